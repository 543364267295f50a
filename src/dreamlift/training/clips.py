"""Training clips for temporal layers: a folder of captioned videos, read into frames.

A clip folder holds video files (.mp4, .gif, .webm, .mov), each with its caption in a .txt file of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F

from dreamlift.errors import UsageError

VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".mov")
"""Video files a clip folder may hold."""

OPPOSITE_MOTIONS = {
    "moving left": "moving right",
    "moving up": "moving down",
    "growing": "shrinking",
    "zooming in": "zooming out",
    "rotating clockwise": "rotating counterclockwise",
}
"""Motion phrases and the phrase that describes the same clip played backwards (both ways round)."""
OPPOSITE_MOTIONS |= {after: before for before, after in OPPOSITE_MOTIONS.items()}


@dataclass
class Clips:
    """N clips of F frames. frames: N×F×3×H×W uint8. captions: N strings."""

    frames: torch.Tensor
    captions: list[str]


def reversed_caption(caption: str) -> str | None:
    """The caption of the clip played backwards when the caption ends in a motion phrase with an opposite
    ("a red cube moving left" → "a red cube moving right"), else None."""
    for phrase, opposite in OPPOSITE_MOTIONS.items():
        if caption.endswith(" " + phrase):
            return caption[: -len(phrase)] + opposite
    return None


def read_clip_folder(folder: Path, num_frames: int, resolution: int) -> Clips:
    """Every captioned video in ``folder``: its first ``num_frames`` frames, centre-cropped and resized to a square.

    Videos shorter than ``num_frames`` are skipped; a folder without usable clips is a :class:`UsageError`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"clip folder not found: {folder}")
    clips, captions = [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        caption_file = path.with_suffix(".txt")
        if not caption_file.is_file():
            continue
        video = iio.imread(path, index=None)  # F×H×W×3 (or ×4)
        if video.ndim != 4 or video.shape[0] < num_frames:
            continue
        frames = torch.from_numpy(np.ascontiguousarray(video[:num_frames, ..., :3])).permute(0, 3, 1, 2).float()
        side = min(frames.shape[-2:])
        top, left = (frames.shape[-2] - side) // 2, (frames.shape[-1] - side) // 2
        frames = frames[..., top : top + side, left : left + side]
        frames = F.interpolate(
            frames, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
        )
        clips.append(frames.round().clamp(0, 255).to(torch.uint8))
        captions.append(caption_file.read_text().strip())
    if not clips:
        raise UsageError(
            f"no clips in {folder}: expected videos ({', '.join(VIDEO_SUFFIXES)}) of ≥ {num_frames} frames "
            "with .txt captions"
        )
    return Clips(torch.stack(clips), captions)
