"""The server's disk named from a browser (issue 27, item 3): the three folder boxes (Home's add panel,
Classify many, Compare's import) read only under the import folders, with one message for every other path
whatever it is; served beyond loopback they are off unless CNN_IMPORT_ROOTS is set; and a pipe named like a
picture is skipped unopened, never waited on, on the CLI too."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pagekit import page_file, shown
from PIL import Image
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from cnn_core.analysis import predict
from cnn_core.data import guards
from cnn_core.runs import store
from ui import own_data

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90
PIPE_TIMEOUT = 60            # a blocked open() never returns: the subprocess is killed after this
needs_bundled = pytest.mark.skipif(not (predict.BUNDLED_MNIST / store.BEST).is_file(),
                                   reason="models/mnist-bundled is not made yet: scripts/make_bundled_model.py")


def _message(root: Path, what: str = "the pictures") -> str:
    return (f"Only folders and files under the import folder {root} can be read from the browser; put {what} "
            "there (or set CNN_IMPORT_ROOTS)")


def _pictures(folder: Path, classes=("red", "blue"), n: int = 3) -> Path:
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = np.random.default_rng(i)
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(folder / c / f"{i}.png")
    return folder


@pytest.fixture
def allowed(tmp_path, monkeypatch) -> Path:
    """An import root named by CNN_IMPORT_ROOTS, beside a folder outside it."""
    root = tmp_path / "allowed"
    root.mkdir()
    monkeypatch.setenv("CNN_IMPORT_ROOTS", str(root))
    return root


@pytest.fixture
def refused(allowed, tmp_path) -> list[str]:
    """Paths the browser may not read: system folders and files, missing ones, a link out of the root,
    '..' out of it, a pipe inside it."""
    outside = _pictures(tmp_path / "outside")
    os.symlink(outside, allowed / "link-out")
    os.mkfifo(allowed / "pipe.zip")
    return ["/etc", "/nonexistent", "/etc/shadow", "/root/.ssh", str(allowed / "link-out"),
            f"{allowed}/../outside", str(allowed / "pipe.zip"), "/dev/zero", "bad\x00path"]


@pytest.fixture
def beyond_loopback():
    """The server as `make run ADDRESS=0.0.0.0` serves it: listening where other machines reach it."""
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    yield
    st_config.set_option("server.address", before)


# ---- the library's check -------------------------------------------------------------------------------

def test_every_refused_path_gets_one_and_the_same_message(refused, allowed):
    """/etc, a missing path, a secret file, a link or '..' out of the root, a pipe, a device: one message."""
    messages = set()
    for path in refused:
        with pytest.raises(guards.OutsideRoots) as exc:
            guards.confine(path)
        messages.add(str(exc.value))
    assert messages == {_message(allowed)}


def test_a_folder_or_zip_inside_the_root_is_taken_resolved(allowed):
    """A folder, a relative name (under the first root) and a zip inside the root come back resolved."""
    _pictures(allowed / "pets")
    (allowed / "pets.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    assert guards.confine(str(allowed / "pets")) == allowed / "pets"
    assert guards.confine("pets") == allowed / "pets"
    assert guards.confine(f"{allowed}/pets/../pets.zip") == allowed / "pets.zip"


def test_without_the_variable_the_root_is_the_data_folders_import_folder(tmp_path, monkeypatch):
    """No CNN_IMPORT_ROOTS: <data dir>/import is the one root, made when first asked for."""
    monkeypatch.delenv("CNN_IMPORT_ROOTS", raising=False)
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "data"))
    assert guards.import_roots() == [tmp_path / "data" / "import"] and (tmp_path / "data" / "import").is_dir()
    with pytest.raises(guards.OutsideRoots, match="^Only folders and files under the import folder "
                                                  f"{tmp_path / 'data' / 'import'} can be read"):
        guards.confine(str(tmp_path))


# ---- the three boxes ---------------------------------------------------------------------------------

def _home(at: AppTest, path: str) -> list[str]:
    at.text_input(key="own.folder").set_value(path).run()
    at.button(key="own.preview").click().run()
    return [shown(e.value) for e in at.error] + [shown(m.value) for m in at.markdown if m.value.startswith("**Preview.**")]


def _classify(at: AppTest, path: str) -> list[str]:
    at.text_input(key="draw.many.folder").set_value(path).run()
    at.button(key="draw.many.go").click().run()
    return [shown(e.value) for e in at.error] + [shown(m.value) for m in at.markdown if "pictures** read" in m.value]


def _compare(at: AppTest, path: str) -> list[str]:
    at.text_input(key="compare.import_path.0").set_value(path).run()
    at.button(key="compare.import").click().run()
    return [shown(e.value) for e in at.error] + [shown(w.value) for w in at.warning]


def _open(page: str) -> AppTest:
    at = AppTest.from_file(page_file(page), default_timeout=TIMEOUT).run()
    if page == "home.py":
        at.segmented_control(key="own.how").set_value("A folder on this machine").run()
    return at


BOXES = {"home": ("home.py", _home, "the pictures", ""),
         "classify many": ("draw.py", _classify, "the pictures", ""),
         "compare import": ("compare.py", _compare, "the run folder", "Not imported: ")}


@pytest.mark.parametrize("box", list(BOXES))
def test_each_box_answers_every_refused_path_with_the_one_message(box, refused, allowed):
    """Each folder box shows the one message for every refused path: nothing listed, no existence told."""
    if box == "classify many" and not (predict.BUNDLED_MNIST / store.BEST).is_file():
        pytest.skip("the Draw page's classify many needs models/mnist-bundled")
    page, act, what, prefix = BOXES[box]
    at = _open(page)
    shown = {path: act(at, path) for path in refused}
    assert not at.exception
    assert shown == {path: [prefix + _message(allowed, what)] for path in refused}


@needs_bundled
def test_classify_many_reads_a_folder_inside_the_root(allowed):
    """A folder of pictures inside the import folder, named relative to it, is classified from Draw's box."""
    _pictures(allowed / "check", classes=("3", "7"))
    (line,) = _classify(_open("draw.py"), "check")
    assert line.startswith("**6 pictures** read; **accuracy ") and line.endswith(" on the 6 in class folders.")


def test_home_previews_a_folder_inside_the_root(allowed):
    """Home's box previews a folder of class folders inside the import folder."""
    _pictures(allowed / "pets")
    at = _open("home.py")
    assert _home(at, str(allowed / "pets")) == [
        (f"**Preview.** 2 classes, 4 training and 2 test images from folder {allowed / 'pets'} (class folders, "
         "split here); 0 unreadable skipped, 0 other files ignored")]


@pytest.mark.parametrize("box", list(BOXES))
def test_served_beyond_loopback_the_boxes_are_off_without_import_roots(box, beyond_loopback, monkeypatch):
    """Served beyond loopback with no CNN_IMPORT_ROOTS, each box is disabled, says why, and reads nothing."""
    if box == "classify many" and not (predict.BUNDLED_MNIST / store.BEST).is_file():
        pytest.skip("the Draw page's classify many needs models/mnist-bundled")
    monkeypatch.delenv("CNN_IMPORT_ROOTS", raising=False)
    at = _open(BOXES[box][0])
    key, go = {"home": ("own.folder", "own.preview"), "classify many": ("draw.many.folder", "draw.many.go"),
               "compare import": ("compare.import_path.0", "compare.import")}[box]
    assert at.text_input(key=key).disabled and own_data.FOLDERS_OFF in [c.value for c in at.caption]
    at.session_state[key] = "/etc"                    # what a crafted message could set: never used
    at.run()
    assert at.button(key=go).disabled and not at.error and not at.exception


def test_served_beyond_loopback_the_boxes_are_on_with_import_roots(beyond_loopback, allowed):
    """Served beyond loopback with CNN_IMPORT_ROOTS set, Home's box reads under those roots."""
    _pictures(allowed / "pets")
    at = _open("home.py")
    assert not at.text_input(key="own.folder").disabled
    assert _home(at, "pets")[0].startswith("**Preview.** 2 classes, 4 training and 2 test images")


# ---- pipes named like pictures: skipped, never opened ---------------------------------------------------

def _cli(*args, timeout=PIPE_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_a_pipe_named_like_a_picture_is_skipped_when_adding_a_dataset(tmp_path):
    """`data add --preview` over a folder holding a FIFO named red/x.png ends and reports it skipped."""
    src = _pictures(tmp_path / "src")
    os.mkfifo(src / "red" / "x.png")
    out = _cli("data", "add", "pets", "--from", str(src), "--size", "8", "--preview")
    assert out.returncode == 0, out.stderr
    assert "1 unreadable skipped" in out.stdout
    assert f"red/x.png ({guards.NOT_REGULAR})" in out.stdout


def test_a_pipe_named_as_the_source_is_refused_unopened(tmp_path):
    """`data add --from` a FIFO named pets.zip is refused at once, not waited on."""
    os.mkfifo(tmp_path / "pets.zip")
    out = _cli("data", "add", "pets", "--from", str(tmp_path / "pets.zip"), "--size", "8", "--preview")
    assert out.returncode != 0 and f"error: {tmp_path / 'pets.zip'} is neither a folder nor a zip file" in out.stderr


@needs_bundled
def test_a_pipe_named_like_a_picture_is_skipped_by_classify_many(tmp_path):
    """`predict` over a folder holding a FIFO named 3/x.png classifies the rest and lists the pipe skipped."""
    src = _pictures(tmp_path / "check", classes=("3", "7"))
    os.mkfifo(src / "3" / "x.png")
    out = _cli("predict", "--run", str(predict.BUNDLED_MNIST), str(src))
    assert out.returncode == 0, out.stderr
    assert f"skipped 3/x.png: {guards.NOT_REGULAR}" in out.stderr and "on 6 labelled pictures" in out.stdout


def test_read_regular_refuses_a_pipe_and_a_device_unopened(tmp_path):
    """guards.read_regular: a FIFO and /dev/zero are refused with the one reason; a file is read."""
    os.mkfifo(tmp_path / "x.png")
    (tmp_path / "y.png").write_bytes(b"abc")
    for path in (tmp_path / "x.png", Path("/dev/zero")):
        with pytest.raises(ValueError) as exc:
            guards.read_regular(path, 100)
        assert str(exc.value) == guards.NOT_REGULAR
    assert guards.read_regular(tmp_path / "y.png", 100) == b"abc"
