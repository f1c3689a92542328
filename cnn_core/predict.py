"""Inference from a run folder: load the trained model once, turn images into its input, predict."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from . import checkpoints, runs
from .data import normalize

MAX_UPLOAD_BYTES = 10 * 2**20      # an uploaded file larger than this is refused unread
MAX_PIXELS = 40_000_000            # width*height above this is refused (decompression bombs)


def load_model(run: str | Path, which: str = "best", device: str = "cpu") -> tuple[nn.Module, dict]:
    """The run's model in eval mode and its metadata (classes, input_shape, mean, std, ...).
    which: "best" (best validation epoch) or "latest" (the last checkpoint)."""
    path = runs.resolve_run(run)
    file = path / (runs.BEST if which == "best" else runs.CHECKPOINT)
    if not file.exists():
        raise checkpoints.CheckpointError(
            f"run {path.name} has no {file.name} yet: it saves one at the end of its first epoch")
    ckpt = checkpoints.load_checkpoint(file)
    return checkpoints.model_from_checkpoint(ckpt, device), checkpoints.model_meta(ckpt)


def image_from_bytes(raw: bytes, input_shape) -> torch.Tensor:
    """Decode PNG/JPEG/... bytes into a (C, H, W) uint8 tensor of the model's input size.
    Refuses files that are too large, not images, or decompression bombs, with a ValueError."""
    from PIL import Image

    if len(raw) > MAX_UPLOAD_BYTES:
        raise ValueError(f"the file is {len(raw) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"the image is {img.width}x{img.height} pixels; the limit is "
                                 f"{MAX_PIXELS:,} pixels")
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"the image was refused as a decompression bomb ({exc})") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"the file is not an image that can be read ({exc})") from None
    channels, height, width = input_shape
    img = img.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return x.view(height, width, channels).permute(2, 0, 1).contiguous()    # (C, H, W)


def predict_uint8(model: nn.Module, meta: dict, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, classes) for uint8 images (N, C, H, W) in the model's input size."""
    x = normalize(images, meta["mean"], meta["std"])
    with torch.no_grad():
        return torch.softmax(model(x.to(next(model.parameters()).device)), dim=1).cpu()


def top_k(probs: torch.Tensor, classes, k: int = 3) -> list[list[tuple[str, float]]]:
    """For each row of probabilities, the k most likely (class name, probability)."""
    values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
    return [[(classes[i], float(v)) for v, i in zip(vs, ids)] for vs, ids in zip(values.tolist(), indices.tolist())]
