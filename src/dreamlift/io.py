"""Atomic outputs: every file (text, JSON, checkpoints, PNG, GIF, MP4) is written under a temporary name in its
own folder, then renamed into place.

A reader therefore sees either the old file or the complete new one, never a half-written one, even if the
process is killed mid-write. Images here are float tensors 3×H×W in [0, 1]; frames are uint8 arrays F×H×W×3.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch

from dreamlift.errors import UsageError


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error remove it.

    The temporary name keeps the final suffix, so libraries that choose a format by extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path | str, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2))


def save_torch(path: Path | str, obj: Any) -> None:
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def ensure_writable_dir(path: Path | str) -> Path:
    """Create ``path`` if needed and check we can write there; raise :class:`UsageError` if not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check."):
            pass
    except OSError as err:
        raise UsageError(f"cannot write to output folder {path}: {err.strerror or err}") from None
    return path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images …×3×H×W in [0, 1] (any device) → uint8 array …×H×W×3."""
    return (images.movedim(-3, -1).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def image_grid(images: torch.Tensor, columns: int) -> torch.Tensor:
    """Images N×3×H×W in a grid of up to ``columns`` per row, the last row padded with white: 3×(R·H)×(C·W)."""
    count, channels, height, width = images.shape
    columns = min(columns, count)
    rows = -(-count // columns)
    padded = torch.cat([images, images.new_ones(rows * columns - count, channels, height, width)])
    return (
        padded.reshape(rows, columns, channels, height, width)
        .permute(2, 0, 3, 1, 4)
        .reshape(channels, rows * height, columns * width)
    )


def write_png(image: torch.Tensor | np.ndarray, path: Path | str) -> None:
    """An image (3×H×W float tensor in [0, 1], or H×W×3 uint8 array) as an 8-bit PNG, atomically."""
    pixels = to_uint8(image) if isinstance(image, torch.Tensor) else image
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, pixels, extension=".png")


def write_gif(frames: np.ndarray, path: Path | str, fps: int) -> None:
    """Looping GIF of frames F×H×W×3 uint8 at ``fps`` (GIF stores delays in hundredths of a second), atomically."""
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=round(100 / fps) * 10, loop=0)


def write_video(frames: np.ndarray, path: Path | str, fps: int) -> None:
    """H.264 mp4 (yuv420p) of frames F×H×W×3 uint8, written atomically by imageio's ffmpeg plugin (imageio-ffmpeg;
    without it imageio would pick another writer and fail obscurely, so its absence is a one-line error)."""
    with atomic_path(path) as tmp:
        try:
            iio.imwrite(
                tmp, frames, plugin="FFMPEG", fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p"
            )
        except ImportError:
            raise UsageError("writing .mp4 needs the imageio-ffmpeg package: pip install imageio-ffmpeg") from None
