"""Your own pictures as a dataset (cnn_core/data/pictures.py): layouts, every image kind, the report's warnings,
hostile zips and images, refusals that write nothing, a kill mid-add, rename and delete, and the whole path
through the CLI: add, train, classify many. Pictures are made with PIL here; tests/test_real_data.py adds
the real CIFAR-2 as PNG files."""
from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_core.cli.entry import main
from cnn_core.data import catalog, pictures
from cnn_core.runs import store

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (230, 30, 30)}


def cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def cli_here(capsys, *args) -> tuple[int, str, str]:
    """The CLI's own parser and handlers in this process: for the commands that only read or refuse, where a
    fresh process would add 3 s of importing torch per call to the suite and nothing to the test."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def picture(colour, size=(40, 30), seed=0, noise=40) -> Image.Image:
    """A colour field with noise: classes told apart by colour, no two pictures alike."""
    rng = np.random.default_rng(seed)
    a = np.clip(np.array(colour)[None, None] + rng.normal(0, noise, (size[1], size[0], 3)), 0, 255)
    return Image.fromarray(a.astype(np.uint8))


def class_folders(root: Path, counts: dict[str, int], ext="png", size=(40, 30)) -> Path:
    for c, n in counts.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            picture(COLOURS[c], size, seed=zlib.crc32(f"{c}{i}".encode())).save(root / c / f"{i:04d}.{ext}")
    return root


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """An empty data folder of this test's own: added datasets never leak between tests."""
    d = tmp_path / "data"
    monkeypatch.setenv("CNN_DATA_DIR", str(d))
    return d


def written(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "cache").glob("*")) if (data_dir / "cache").exists() else []


# ---- layouts and the stored result -----------------------------------------------------------------

def test_class_folders_become_a_dataset_split_here_stratified_and_seeded(tmp_path, data_dir):
    src = class_folders(tmp_path / "pets", {"red": 40, "blue": 20})
    (src / "notes.txt").write_text("not a picture")
    info = pictures.add("pets", src, pictures.Options(size=16, val=0.2, test=0.25), data_dir=data_dir)
    assert info.classes == ("blue", "red") and info.input_shape == (3, 16, 16)
    assert info.own["counts"] == {"blue": {"train": 15, "test": 5}, "red": {"train": 30, "test": 10}}
    assert info.own["val_size"] == 12                    # 0.2 of all 60 pictures
    assert info.own["sizes"] == [["40x30", 60]] and info.own["ignored"] == 1
    assert catalog.dataset_status("pets").state == "ready" and "pets" in catalog.datasets()
    splits = catalog.load_splits("pets", seed=0)
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (33, 12, 15)
    assert splits.val_y.bincount().tolist() == [4, 8]    # stratified like the built-in sets
    raw = catalog.load_raw("pets")
    assert raw.train_x.dtype == torch.uint8
    red = raw.train_x[raw.train_y == 1].float().mean((0, 2, 3))
    assert red[0] > 150 and red[2] < 80                  # the pixels are the pictures', in RGB order
    again = pictures.read_source(src, pictures.Options(size=16, val=0.2, test=0.25))
    assert again.report.counts == info.own["counts"]
    assert (again.test_x == raw.test_x).all()            # the same seed splits the same way
    other = pictures.read_source(src, pictures.Options(size=16, val=0.2, test=0.25, seed=1))
    assert not (other.test_x == raw.test_x).all()


def test_train_and_test_folders_keep_their_split_and_overlap_is_warned(tmp_path, data_dir):
    src = tmp_path / "digits"
    class_folders(src / "train", {"red": 12, "blue": 12})
    class_folders(src / "test", {"red": 3, "blue": 2})   # the test part's pictures are copies of train's
    found = pictures.read_source(src, pictures.Options(size=8, test=0.5))
    assert found.report.layout.startswith("train/ and test/")
    assert found.report.counts == {"blue": {"train": 12, "test": 2}, "red": {"train": 12, "test": 3}}
    text = " ".join(found.report.warnings)
    assert "5 test pictures are also in train" in text and "test/red/0000.png = train/red/0000.png" in text
    class_folders(src / "test", {"green": 2})
    with pytest.raises(pictures.Refused, match="'green' has pictures in test/ but none in train/"):
        pictures.read_source(src)


def test_a_zip_of_one_folder_reads_as_its_content_and_is_never_extracted(tmp_path, data_dir):
    src = class_folders(tmp_path / "src", {"red": 5, "blue": 5}, ext="jpg")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(src.rglob("*.jpg")):
            z.write(p, f"holiday/{p.relative_to(src)}")
        z.writestr("__MACOSX/holiday/red/._0000.jpg", b"resource fork")
    info = pictures.add("holiday", None, pictures.Options(size=8), data_dir=data_dir, upload_name="holiday.zip",
                         read=pictures.read_source(buf.getvalue(), pictures.Options(size=8), name="holiday.zip"))
    assert info.classes == ("blue", "red") and info.own["origin"] == "holiday.zip"
    assert info.own["ignored"] == 1
    assert written(data_dir) == ["holiday.json", "holiday.pt"]


def test_every_kind_of_picture_is_read_into_the_chosen_channels(tmp_path, data_dir):
    src = tmp_path / "kinds"
    for c in ("a", "b"):
        (src / c).mkdir(parents=True)
    Image.new("P", (10, 10), 3).save(src / "a" / "palette.png")
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))                     # fully transparent: white paper
    rgba.save(src / "a" / "transparent.png")
    Image.new("CMYK", (10, 10), (0, 0, 0, 0)).save(src / "a" / "cmyk.jpg")      # no ink: white
    Image.fromarray(np.full((10, 10), 65535, np.uint16)).save(src / "a" / "sixteen.png")
    frames = [Image.new("L", (10, 10), 200), Image.new("L", (10, 10), 10)]
    frames[0].save(src / "b" / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("RGB", (10, 10), (0, 0, 255)).save(src / "b" / "blue.webp", lossless=True)
    Image.new("1", (10, 10), 1).save(src / "b" / "bits.bmp")
    tall = Image.new("RGB", (10, 20), (0, 0, 0))
    tall.paste((255, 255, 255), (0, 0, 10, 10))                           # top half white, bottom black
    exif = Image.Exif()
    exif[0x0112] = 3                                                       # "rotate 180" for the viewer
    tall.save(src / "b" / "upside.jpg", exif=exif, quality=95)
    grey = pictures.read_source(src, pictures.Options(size=8, channels=1, test=0.1))
    assert not grey.report.skipped, grey.report.skipped
    x = {name: img for name, img in zip(grey.train_files + grey.test_files,
                                        list(grey.train_x) + list(grey.test_x))}
    assert x["a/transparent.png"].min() == 255 and x["a/cmyk.jpg"].min() >= 250
    assert x["a/sixteen.png"].min() == 255                                # 65535 -> 255, not clipped 16-bit
    assert x["b/anim.gif"].float().mean() == pytest.approx(200, abs=2)    # the first frame
    assert x["b/bits.bmp"].min() == 255
    flipped = x["b/upside.jpg"][0].float()                                # EXIF applied: white at the bottom
    assert flipped[-1].mean() > 200 and flipped[0].mean() < 50
    colour = pictures.read_source(src, pictures.Options(size=8, channels=3, test=0.1))
    blue = dict(zip(colour.train_files + colour.test_files, list(colour.train_x) + list(colour.test_x)))["b/blue.webp"]
    assert blue[:, 0, 0].tolist() == [0, 0, 255]
    pad = pictures.read_source(src, pictures.Options(size=8, channels=1, fit="pad", test=0.1))
    padded = dict(zip(pad.train_files + pad.test_files, list(pad.train_x) + list(pad.test_x)))["b/upside.jpg"][0]
    assert padded[:, 0].max() == 0 and padded[:, -1].max() == 0          # black borders left and right


def test_damaged_pictures_are_skipped_and_listed_and_other_files_counted(tmp_path, data_dir):
    src = class_folders(tmp_path / "src", {"red": 12, "blue": 12})
    good = (src / "red" / "0000.png").read_bytes()
    (src / "red" / "truncated.png").write_bytes(good[: len(good) // 2])
    (src / "blue" / "not-really.jpg").write_bytes(b"hello, I am text")
    (src / "blue" / "empty.png").write_bytes(b"")
    (src / "blue" / "data.csv").write_text("1,2,3")
    found = pictures.read_source(src, pictures.Options(size=8))
    skipped = dict(found.report.skipped)
    assert set(skipped) == {"red/truncated.png", "blue/not-really.jpg", "blue/empty.png"}
    assert "not an image that can be read" in skipped["blue/not-really.jpg"]
    assert "empty" in skipped["blue/empty.png"]
    assert found.report.ignored == 1 and len(found.train_y) + len(found.test_y) == 24
    assert any("3 pictures could not be read" in w for w in found.report.warnings)


def test_warnings_for_small_classes_imbalance_and_copies(tmp_path):
    src = class_folders(tmp_path / "src", {"red": 110, "blue": 6})
    (src / "blue" / "copy.png").write_bytes((src / "blue" / "0000.png").read_bytes())
    text = " | ".join(pictures.read_source(src, pictures.Options(size=8)).report.warnings)
    assert "fewer than 10 pictures in blue (7)" in text
    assert "imbalanced over 10:1 (red 110, blue 7)" in text
    assert "1 picture is an exact copy of another: blue/copy.png = blue/0000.png" in text


# ---- bad input: a clear message, nothing written -------------------------------------------------

def _zip(tmp_path, entries: dict, name="bad.zip", symlink: str | None = None) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for arc, content in entries.items():
            z.writestr(arc, content)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize("entry, words", [
    ("../../evil/a.png", "points outside the archive"),
    ("/abs/a.png", "points outside the archive"),
    ("C:/win/a.png", "points outside the archive"),
])
def test_zip_entries_that_point_outside_are_refused_before_anything_is_read(tmp_path, data_dir, entry, words):
    png = io.BytesIO()
    picture(COLOURS["red"]).save(png, "PNG")
    path = _zip(tmp_path, {"red/1.png": png.getvalue(), "blue/1.png": png.getvalue(), entry: png.getvalue()})
    with pytest.raises(pictures.Refused, match=words):
        pictures.add("bad", path, data_dir=data_dir)
    assert written(data_dir) == [] and not (tmp_path.parent / "evil").exists()


def test_zip_symlinks_bombs_and_too_many_entries_are_refused(tmp_path, data_dir, monkeypatch):
    with pytest.raises(pictures.Refused, match="'red/link.png' is a symbolic link"):
        pictures.read_source(_zip(tmp_path, {"red/1.png": b"x"}, "link.zip", symlink="red/link.png"))
    bomb = _zip(tmp_path, {"red/1.bmp": bytes(80 * 2**20), "blue/1.bmp": b"x"}, "bomb.zip")  # 80 MB of zeros
    assert bomb.stat().st_size < 200_000
    with pytest.raises(pictures.Refused, match=r"times its size \(the limit is 100x\): refused as a zip bomb"):
        pictures.read_source(bomb)
    # 200,001 real entries would take the suite a minute to write: the limit is lowered instead
    monkeypatch.setattr(pictures, "MAX_FILES", 5)
    with pytest.raises(pictures.Refused, match="holds 6 entries; the limit is 5"):
        pictures.read_source(_zip(tmp_path, {f"c{i % 2}/{i}.png": b"x" for i in range(6)}, "many.zip"))
    assert written(data_dir) == []


def _png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims width x height (a decompression bomb's trick)."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    ihdr = raw[12:29]                                  # chunk type + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    raw[12:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(raw)


def test_a_decompression_bomb_picture_is_refused_unread(tmp_path):
    src = class_folders(tmp_path / "src", {"red": 3, "blue": 3})
    (src / "red" / "bomb.png").write_bytes(_png_claiming(60_000, 60_000))
    found = pictures.read_source(src, pictures.Options(size=8))
    why = dict(found.report.skipped)["red/bomb.png"]
    assert "decompression bomb" in why and "3600000000 pixels" in why


@pytest.mark.parametrize("counts, name, words", [
    ({"red": 5}, "solo", "one class only (red)"),
    ({"red": 5, "blue": 0}, "hollow", "'blue' holds no readable picture"),
    ({}, "none", "found no class folders"),
    ({"red": 3, "blue": 3}, "mnist", "'mnist' is a built-in dataset"),
    ({"red": 3, "blue": 3}, "a/b", "cannot name a dataset"),
    ({"red": 3, "blue": 3}, "..", "cannot name a dataset"),
    ({"red": 3, "blue": 3}, "My Set", "cannot name a dataset"),
])
def test_sources_and_names_that_cannot_be_a_dataset_are_refused_with_their_reason(tmp_path, data_dir, counts,
                                                                                   name, words):
    src = class_folders(tmp_path / "src", {c: n for c, n in counts.items() if n})
    for c, n in counts.items():
        (src / c).mkdir(exist_ok=True)
    src.mkdir(exist_ok=True)
    (src / "loose.png").write_bytes(b"")
    with pytest.raises(pictures.Refused, match=re.escape(words)):
        pictures.add(name, src, pictures.Options(size=8), data_dir=data_dir)
    assert written(data_dir) == []


def test_a_name_in_use_is_refused_and_the_existing_dataset_is_kept(tmp_path, data_dir, capsys):
    src = class_folders(tmp_path / "src", {"red": 4, "blue": 4})
    pictures.add("mine", src, pictures.Options(size=8), data_dir=data_dir)
    before = (data_dir / "cache" / "mine.pt").read_bytes()
    code, _, err = cli_here(capsys, "data", "add", "mine", "--from", str(src), "--size", "16")
    assert code == 1 and "a dataset named 'mine' exists already" in err
    assert (data_dir / "cache" / "mine.pt").read_bytes() == before


def test_options_out_of_range_are_refused():
    for options, words in ((pictures.Options(size=4), "size must be a whole number of pixels from 8 to 512"),
                           (pictures.Options(channels=2), "channels must be 1"),
                           (pictures.Options(val=0.9), "val must be a share above 0 and at most 0.5"),
                           (pictures.Options(fit="stretch"), "fit must be one of: crop, pad")):
        with pytest.raises(pictures.Refused, match=words):
            options.check()


def test_a_kill_9_mid_add_leaves_no_dataset_that_looks_ready_and_adding_again_works(tmp_path, data_dir, capsys):
    """The process dies as kill -9 would, with the images on disk and the sidecar not yet written."""
    src = class_folders(tmp_path / "src", {"red": 10, "blue": 10})
    killed = cli("data", "add", "half", "--from", str(src), "--size", "8", env={"CNN_FAULT": "kill@dataset-write:1"})
    assert killed.returncode == -9
    assert "half" not in catalog.datasets() and "half" not in cli_here(capsys, "data", "status")[1]
    with pytest.raises(ValueError, match="unknown dataset 'half'"):
        catalog.load_splits("half")
    assert cli_here(capsys, "data", "add", "half", "--from", str(src), "--size", "8")[0] == 0
    assert catalog.dataset_status("half").state == "ready" and written(data_dir) == ["half.json", "half.pt"]


def test_rename_and_delete(tmp_path, data_dir, capsys):
    src = class_folders(tmp_path / "src", {"red": 4, "blue": 4})
    pictures.add("first", src, pictures.Options(size=8), data_dir=data_dir)
    images = catalog.load_raw("first").train_x.clone()
    pictures.rename("first", "second", data_dir)
    assert "first" not in catalog.datasets() and catalog.get_info("second").own["title"] == "second"
    assert (catalog.load_raw("second").train_x == images).all()
    with pytest.raises(pictures.Refused, match="'cifar10' is a built-in dataset"):
        pictures.rename("second", "cifar10", data_dir)
    with pytest.raises(pictures.Refused, match="only datasets added from your images"):
        pictures.delete("mnist", data_dir)
    assert cli_here(capsys, "data", "delete", "second") == (0, "deleted dataset second\n", "")
    assert written(data_dir) == []


# ---- the whole path: add, train, classify many, from the command line ------------------------------

def test_add_train_and_classify_many_from_the_command_line(tmp_path, data_dir, runs_dir, capsys):
    src = class_folders(tmp_path / "src", {"red": 40, "blue": 40, "green": 40}, size=(24, 24))
    code, out, _ = cli_here(capsys, "data", "add", "colours", "--from", str(src), "--size", "12", "--preview")
    assert code == 0 and "3 classes, 108 training and 12 test images" in out, _
    assert "nothing written" in out and written(data_dir) == []
    added = cli("data", "add", "colours", "--from", str(src), "--size", "12")
    assert added.returncode == 0, added.stderr
    assert "added dataset colours" in added.stdout and "colours (yours)" in cli_here(capsys, "data", "status")[1]
    shown = cli_here(capsys, "data", "show", "colours")[1]
    assert "3 x 12 x 12" in shown and "24x24 (120)" in shown
    trained = cli("train", "--dataset", "colours", "--arch", "simple-cnn", "--epochs", "3", "--batch-size", "16",
                  "--lr", "0.01", "--quiet")
    assert trained.returncode == 0, trained.stderr
    (record,) = store.list_runs()
    run_id = record.id
    assert record.dataset == "colours" and record.summary["test_acc"] >= 0.9
    labelled = tmp_path / "check"
    class_folders(labelled, {"red": 5, "blue": 5})
    (labelled / "blue" / "junk.png").write_bytes(b"junk")
    csv_path = tmp_path / "out.csv"
    many = cli("predict", "--run", run_id, str(labelled), "--csv", str(csv_path))
    assert many.returncode == 0, many.stderr
    assert "accuracy 1.0000 on 10 labelled pictures" in many.stdout
    assert "skipped blue/junk.png" in many.stderr
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "file,label,correct,top1,p1,top2,p2,top3,p3" and len(lines) == 11
    assert lines[1].startswith("blue/0000.png,blue,True,blue,")


def test_a_drawing_is_fitted_to_a_grey_dataset_of_pictures(tmp_path, data_dir):
    """Draw offers runs of grey added datasets: the drawing is resized to their size and, their pictures
    being dark on light, inverted to dark ink on light paper (MNIST's recipe stays for MNIST)."""
    from cnn_core.analysis import drawing

    src = tmp_path / "letters"
    for c in ("l", "o"):
        (src / c).mkdir(parents=True)
        for i in range(3):
            paper = Image.new("L", (20, 20), 240)
            paper.paste(20, (8, 2, 12, 18) if c == "l" else (4, 4, 16, 16))
            paper.save(src / c / f"{i}.png")
    info = pictures.add("letters", src, pictures.Options(size=16, channels=1), data_dir=data_dir)
    assert info.drawable and drawing.drawable("letters")
    ink = np.zeros((280, 280), np.float32)
    ink[40:240, 110:170] = 1.0                                      # a white stroke on the black canvas
    image = drawing.drawing_for_model(ink, {"dataset": "letters", "input_shape": [1, 16, 16]})
    assert image.shape == (1, 16, 16) and image.dtype == torch.uint8
    assert image[0, 0, 0] == 255 and image[0, 8, 8] < 50             # dark ink on light paper, like its pictures
    digit = drawing.drawing_for_model(ink, {"dataset": "mnist", "input_shape": [1, 28, 28]})
    assert digit.shape == (1, 28, 28) and digit[0, 0, 0] == 0        # MNIST: its own recipe, light on dark


# ---- budgets: decoded size and disk (issue 27, items 4 and 8) -------------------------------------------

def _tiny_pngs_zip(tmp_path, n: int, name="tiny.zip") -> Path:
    """A zip of n 1x1 PNGs in two class folders: a few KB that decode to n * 3 * size^2 bytes."""
    png = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 30, 30)).save(png, "PNG")
    return _zip(tmp_path, {f"{'ab'[i % 2]}/{i}.png": png.getvalue() for i in range(n)}, name)


def test_decoded_size_is_refused_before_decoding_with_the_numbers(tmp_path, data_dir, monkeypatch):
    """300 1x1 PNGs at 512x512 colour (236 MB decoded) against a 100 MB budget: refused, nothing written."""
    monkeypatch.setenv("CNN_MAX_DATASET_BYTES", "100000000")
    with pytest.raises(pictures.Refused) as exc:
        pictures.add("big", _tiny_pngs_zip(tmp_path, 300), pictures.Options(size=512, channels=3), data_dir=data_dir)
    assert str(exc.value) == ("300 pictures at 512x512 colour would take 236 MB in memory; the limit is 100 MB "
                              "(CNN_MAX_DATASET_BYTES): choose a smaller size or fewer pictures")
    assert written(data_dir) == []


def test_a_refused_decoded_size_never_raises_peak_memory(tmp_path):
    """The same refused add in a fresh process: its peak resident memory grows by under 100 MiB (decoding
    every picture first, as before the budget, grew it by about 690 MiB here)."""
    # VmHWM, the peak of this process's own memory: ru_maxrss carries the parent's (pytest's) peak across exec
    script = ("import sys\n"
              "from cnn_core.data import pictures\n"
              "peak = lambda: int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])   # KiB\n"
              "before = peak()\n"
              "try:\n"
              "    pictures.add('big', sys.argv[1], pictures.Options(size=512, channels=3))\n"
              "    print('added')\n"
              "except pictures.Refused:\n"
              "    print('refused')\n"
              "print((peak() - before) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", script, str(_tiny_pngs_zip(tmp_path, 300))], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CNN_DATA_DIR": str(tmp_path / "data"),
                              "CNN_MAX_DATASET_BYTES": "100000000"})
    verdict, grown_mib = out.stdout.split()
    assert verdict == "refused" and int(grown_mib) < 100, out.stdout + out.stderr


def test_classify_many_refuses_past_the_decoded_budget_before_decoding(tmp_path, monkeypatch):
    """Classify many with MNIST's bundled model: 200 pictures at 28x28 grey against a 100 KB budget."""
    from cnn_core.analysis import predict

    if not (predict.BUNDLED_MNIST / store.BEST).is_file():
        pytest.skip("models/mnist-bundled is not made yet")
    model, meta = predict.load_model(predict.BUNDLED_MNIST)
    monkeypatch.setenv("CNN_MAX_DATASET_BYTES", "100000")
    with pytest.raises(ValueError) as exc:
        predict.classify_many(model, meta, [str(_tiny_pngs_zip(tmp_path, 200))])
    assert str(exc.value) == ("200 pictures at 28x28 grey would take 157 kB in memory; the limit is 100 kB "
                              "(CNN_MAX_DATASET_BYTES): choose fewer pictures")


def test_adding_past_the_disk_limit_for_added_datasets_is_refused_with_the_numbers(tmp_path, data_dir, monkeypatch):
    """A second dataset that would bring the added datasets past CNN_MAX_DATA_DISK is refused; the first stays."""
    from cnn_core.data import guards

    src = class_folders(tmp_path / "src", {"red": 10, "blue": 10})
    pictures.add("first", src, pictures.Options(size=16), data_dir=data_dir)
    used = sum(p.stat().st_size for p in (data_dir / "cache").glob("first.*"))
    new = 20 * 3 * 16 * 16 + 20 * 8                     # the pictures (uint8) and their labels (int64)
    monkeypatch.setenv("CNN_MAX_DATA_DISK", str(used + new // 2))
    with pytest.raises(pictures.Refused) as exc:
        pictures.add("second", src, pictures.Options(size=16), data_dir=data_dir)
    assert str(exc.value) == (f"Adding 'second' (16 kB) would bring the added datasets to "
                              f"{guards.fmt_bytes(used + new)}; the limit is {guards.fmt_bytes(used + new // 2)} "
                              "(CNN_MAX_DATA_DISK): delete a dataset or raise the limit")
    assert written(data_dir) == ["first.json", "first.pt"]
