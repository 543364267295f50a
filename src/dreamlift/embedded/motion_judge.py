"""An independent judge of clips of the embedded vocabulary: which way the object moves, its colour, and flicker.

No network is involved: the object is the set of pixels far from the background colour (the median of each
frame's border), and the verdict comes from its centroid track, its area track and its mean hue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dreamlift.embedded.shapes import nearest_hue_colour
from dreamlift.scene.background import border_colour

MASK_DISTANCE = 0.15
"""RGB distance (in [0, 1] units) from the background above which a pixel belongs to the object."""
MIN_AREA = 8
"""Pixels the object must cover in every frame."""
MIN_TRAVEL = 0.06
"""Centroid travel over the clip, as a fraction of the frame width, below which the object is not translating."""
MIN_GROWTH = math.log(1.25)
"""|log(last area / first area)| below which the object is not growing or shrinking."""
MAX_AREA_JERK = 0.3
"""Largest second difference of the area track, as a fraction of the mean area, before a clip flickers."""
MAX_CENTROID_JERK = 0.08
"""Largest second difference of the centroid track, as a fraction of the frame width, before a clip flickers."""


@dataclass
class ClipVerdict:
    """What the judge sees in one clip."""

    motion: str
    """One of MOTIONS, or "static", or "none" (no object in some frame)."""
    colour: str | None
    """Palette colour nearest in hue to the object's mean colour over the clip."""
    colour_steady: bool
    """Every frame's object has that same nearest colour."""
    flicker: bool
    """The area or centroid track jumps (large second differences)."""
    travel: tuple[float, float]
    """Centroid displacement (right, up) over the clip, in fractions of the frame width and height."""
    growth: float
    """log(area of the last frame / area of the first), from a line fitted to the log-area track."""


def _slope(values: torch.Tensor) -> float:
    """Least-squares slope of values (F,) against frame index, times F − 1: the change over the clip."""
    frames = values.shape[0]
    if frames < 2:
        return 0.0
    k = torch.arange(frames, dtype=values.dtype)
    k = k - k.mean()
    return float((k * (values - values.mean())).sum() / (k * k).sum() * (frames - 1))


def _jerk(values: torch.Tensor) -> float:
    return float((values[2:] - 2 * values[1:-1] + values[:-2]).abs().max()) if values.shape[0] >= 3 else 0.0


def object_masks(frames: torch.Tensor) -> torch.Tensor:
    """Boolean masks F×H×W of the pixels far from each frame's background (frames F×3×H×W in [0, 1])."""
    return (frames - border_colour(frames)[..., None, None]).norm(dim=1) > MASK_DISTANCE


def judge_clip(frames: torch.Tensor) -> ClipVerdict:
    """Verdict on one clip, frames F×3×H×W in [0, 1]."""
    masks = object_masks(frames).float()
    height, width = masks.shape[-2:]
    area = masks.sum(dim=(1, 2))
    if (area < MIN_AREA).any():
        return ClipVerdict("none", None, False, True, (0.0, 0.0), 0.0)
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=masks.dtype), torch.arange(width, dtype=masks.dtype), indexing="ij"
    )
    x = (masks * cols).sum(dim=(1, 2)) / area / width
    y = (masks * rows).sum(dim=(1, 2)) / area / height
    travel = (_slope(x), -_slope(y))
    growth = _slope(area.log())
    translation = math.hypot(*travel)
    translation_score, growth_score = translation / MIN_TRAVEL, abs(growth) / MIN_GROWTH
    if max(translation_score, growth_score) < 1:
        motion = "static"
    elif growth_score > translation_score:
        motion = "growing" if growth > 0 else "shrinking"
    elif abs(travel[0]) >= abs(travel[1]):
        motion = "moving right" if travel[0] > 0 else "moving left"
    else:
        motion = "moving up" if travel[1] > 0 else "moving down"
    pixels = frames.permute(0, 2, 3, 1)[masks.bool()]  # all object pixels, P×3
    colour = nearest_hue_colour(pixels.mean(0))
    per_frame = [
        nearest_hue_colour(frames[k].permute(1, 2, 0)[masks[k].bool()].mean(0)) for k in range(frames.shape[0])
    ]
    flicker = _jerk(area) / float(area.mean()) > MAX_AREA_JERK or max(_jerk(x), _jerk(y)) > MAX_CENTROID_JERK
    return ClipVerdict(motion, colour, all(c == colour for c in per_frame), flicker, travel, growth)
