"""MNIST's preprocessing recipe for drawings and uploads, and the upload guards."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnn_core.analysis.drawing import ink_from_rgba
from cnn_core.analysis.predict import image_for_model, ink_from_upload, mnist_preprocess


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _canvas_with_one(x0=30, y0=20, height=60, width=18) -> np.ndarray:
    """A 280x280 RGBA canvas, black, with a small white '1' drawn off-centre (top-left)."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(img).line([(x0, y0), (x0, y0 + height)], fill=(255, 255, 255, 255), width=width)
    return np.asarray(img)


def _ink_box(x: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero((x > 30).any(axis=1)), np.flatnonzero((x > 30).any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def test_small_offcentre_digit_comes_out_centred_and_20px_tall():
    """A small stroke in a corner fills 20 px of height and its centre of mass sits at the centre."""
    out = mnist_preprocess(ink_from_rgba(_canvas_with_one()))[0].numpy().astype(np.float32)
    assert out.shape == (28, 28)
    top, bottom, _, _ = _ink_box(out)
    assert 19 <= bottom - top + 1 <= 21
    ys, xs = np.indices(out.shape)
    cy, cx = (ys * out).sum() / out.sum(), (xs * out).sum() / out.sum()
    assert abs(cy - 13.5) <= 0.75 and abs(cx - 13.5) <= 0.75


def test_wide_digit_keeps_its_aspect():
    """A wide mark is fitted by its width (20 px) and stays wider than tall."""
    img = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(img).line([(40, 200), (240, 200)], fill=255, width=20)
    out = mnist_preprocess(np.asarray(img) / 255.0)[0].numpy()
    top, bottom, left, right = _ink_box(out)
    assert 19 <= right - left + 1 <= 21 and bottom - top + 1 < 6


def test_empty_canvas_is_refused():
    """A canvas with no ink raises ValueError with a message for the user."""
    empty = np.zeros((280, 280, 4), dtype=np.uint8)
    empty[..., 3] = 255
    with pytest.raises(ValueError, match="empty"):
        mnist_preprocess(ink_from_rgba(empty))


def test_dark_on_light_upload_is_inverted():
    """Black ink on white paper gives the same input as white ink on black."""
    light = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(light).ellipse([50, 40, 150, 170], outline=0, width=14)
    dark = Image.eval(light, lambda v: 255 - v)
    a = mnist_preprocess(ink_from_upload(_png(light)))
    b = mnist_preprocess(ink_from_upload(_png(dark)))
    assert a.float().mean() > 10 and (a.int() - b.int()).abs().max() <= 1


def test_decompression_bomb_is_refused():
    """An image of 64 million pixels in a small file is refused before it is decoded."""
    bomb = _png(Image.new("1", (8000, 8000)))
    assert len(bomb) < 200_000
    with pytest.raises(ValueError, match="limit"):
        ink_from_upload(bomb)


def test_not_an_image_is_refused():
    """Bytes that are no image format raise ValueError saying so."""
    with pytest.raises(ValueError, match="not an image"):
        image_for_model(b"%PDF-1.4 certainly not a png", {"dataset": "cifar10", "input_shape": [3, 32, 32]})


def test_oversized_file_is_refused():
    """A file over the upload limit is refused unread."""
    with pytest.raises(ValueError, match="MB"):
        ink_from_upload(b"\0" * (11 * 2**20))


def test_grey_paper_becomes_black_background():
    """A digit photographed on grey paper comes out with 0 everywhere outside the ink, as in MNIST."""
    paper = Image.new("L", (200, 200), 235)
    ImageDraw.Draw(paper).line([(100, 30), (100, 170)], fill=20, width=16)
    out = mnist_preprocess(ink_from_upload(_png(paper)))[0].numpy()
    assert out.max() > 200
    assert out[:, :8].max() == 0 and out[:, 20:].max() == 0
