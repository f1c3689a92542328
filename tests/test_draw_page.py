"""The Draw page under AppTest: it renders with only the bundled model, an injected drawing is read,
an empty drawing gets a friendly word, MNIST runs are listed after the bundled model, and no model at
all points to Train."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest
from torch import nn

from cnn_core.analysis import drawing, predict
from cnn_core.config import TrainConfig
from cnn_core.nets.architectures import build_model
from cnn_core.runs import checkpoints, store

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "ui" / "draw" / "page.py")
CANVAS = "draw.canvas.0"        # ui/draw/state.py: the canvas key before any Clear
TIMEOUT = 90                    # the first run in a process imports torch

needs_bundled = pytest.mark.skipif(not (predict.BUNDLED_MNIST / store.BEST).is_file(),
                                   reason="models/mnist-bundled is not made yet: scripts/make_bundled_model.py")


def fake_run(runs_dir: Path, arch: str = "lenet", dataset: str = "mnist", seed: int = 0) -> Path:
    """A run folder with an untrained model's best.pt: enough to be listed and to predict."""
    path = store.create_run(TrainConfig(dataset=dataset, arch=arch), runs_dir=runs_dir)
    record = store.read_run(path)
    torch.manual_seed(seed)
    model = build_model(arch, tuple(record.input_shape), len(record.classes), record.arch_params)
    meta = {"arch": arch, "arch_params": record.arch_params, "input_shape": record.input_shape,
            "num_classes": len(record.classes), "classes": record.classes, "mean": [0.13], "std": [0.31],
            "dataset": dataset}
    checkpoints.save_atomic(checkpoints.model_record(model, meta, epoch=1, val_acc=0.1), path / store.BEST)
    store.update_run(path, status="completed")
    return path


def canvas_state(img: Image.Image) -> dict:
    """What the canvas component stores in session state after a stroke (see docs UI-NOTES)."""
    buf = io.BytesIO()
    img.convert("RGBA").save(buf, format="PNG")
    data = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"drawing": {"raw": {"objects": [{"type": "Path"}]}, "data": data}, "backgroundFit": None}


def drawn_one() -> Image.Image:
    """A 280x280 canvas with a slightly slanted '1', off-centre to the right."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(img).line([(190, 60), (180, 200)], fill=(255, 255, 255, 255), width=18)
    return img


def page(inject: Image.Image | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if inject is not None:
        at.session_state[CANVAS] = canvas_state(inject)
    return at.run()


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error")
                     for e in getattr(at, kind))


def predictions(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("## Prediction:")]


@needs_bundled
def test_fresh_install_lists_the_bundled_model_and_asks_for_a_drawing():
    """With an empty runs folder the bundled model is the one choice and the page asks for a digit."""
    at = page()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.selectbox(key="draw.run")
    assert picker.value == str(predict.BUNDLED_MNIST) and len(picker.options) == 1
    assert "Draw a digit" in texts(at) and not at.error and not predictions(at)


@needs_bundled
def test_injected_drawing_is_read_by_the_bundled_model():
    """A drawn '1' gives the heading 'Prediction: 1', the 28x28 input image and two charts."""
    at = page(drawn_one())
    assert not at.exception, [e.value for e in at.exception]
    assert predictions(at) == ["## Prediction: 1"]
    assert "first conv layer" in " ".join(s.value for s in at.subheader)
    assert len(at.get("plotly_chart")) == 2 and len(at.get("image")) == 1


@needs_bundled
def test_empty_drawing_shows_a_friendly_message():
    """A canvas with strokes erased (all black) is no error: the page says to draw first."""
    at = page(Image.new("RGBA", (280, 280), (0, 0, 0, 255)))
    assert not at.exception and not at.error
    assert "drawing is empty" in texts(at) and not predictions(at)


def test_no_model_at_all_points_to_train(monkeypatch, tmp_path):
    """Without the bundled model and without MNIST runs, a warning and a link to Train, no exception."""
    monkeypatch.setattr(predict, "BUNDLED_MNIST", tmp_path / "nothing-here")
    at = page(drawn_one())
    assert not at.exception, [e.value for e in at.exception]
    assert "No model can read digits yet" in texts(at) and not predictions(at)


def test_drawable_runs_listed_after_the_bundled_model(monkeypatch, tmp_path, runs_dir):
    """drawable_runs: bundled first, then MNIST runs with a best.pt; Fashion-MNIST and weightless runs are left out."""
    bundled = fake_run(tmp_path / "models")
    monkeypatch.setattr(predict, "BUNDLED_MNIST", bundled)
    lenet = fake_run(runs_dir, "lenet")
    fake_run(runs_dir, "lenet", dataset="fashion-mnist")
    store.create_run(TrainConfig(dataset="mnist"), runs_dir=runs_dir)          # queued: no best.pt yet
    assert [r.path for r in drawing.drawable_runs()] == [bundled, lenet]


def test_every_run_side_by_side_and_an_mlp_has_no_maps(monkeypatch, tmp_path, runs_dir):
    """The all-runs toggle shows one answer per run; an MLP gets a word instead of feature maps."""
    monkeypatch.setattr(predict, "BUNDLED_MNIST", fake_run(tmp_path / "models", "lenet"))
    mlp = fake_run(runs_dir, "mlp")
    at = page(drawn_one())
    at.selectbox(key="draw.run").set_value(str(mlp))
    at.toggle(key="draw.all").set_value(True)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "no conv layers" in texts(at)
    assert len(at.metric) == 2 and all(m.value in list("0123456789") for m in at.metric)


def _relu_first() -> nn.Module:
    """A model whose first conv is not its first layer: first_conv_maps must take its hook path."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))


@pytest.mark.parametrize("make, before", [(lambda: build_model("lenet", (1, 28, 28), 10), lambda x: x),
                                          (_relu_first, torch.relu)], ids=["conv-first", "hooked"])
def test_first_conv_maps_equal_the_first_conv_of_a_manual_forward(make, before):
    """first_conv_maps returns the first Conv2d's output, computed by hand from the normalized input."""
    torch.manual_seed(0)
    model = make().eval()
    meta = {"mean": [0.13], "std": [0.31]}
    image = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    name, maps = drawing.first_conv_maps(model, meta, image)
    conv = dict(model.named_modules())[name]
    expected = conv(before(((image.float() / 255 - 0.13) / 0.31).unsqueeze(0)))[0]      # (K, h, w)
    assert maps.shape == tuple(expected.shape)
    assert torch.allclose(torch.from_numpy(maps), expected.detach(), atol=1e-5)
