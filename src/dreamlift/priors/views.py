"""View-dependent prompting (DreamFusion): which view suffix a camera's angles call for.

The same rule labels the embedded prior's training captions and picks the prompt during score distillation,
so the prior is asked exactly the question it was taught.
"""

from __future__ import annotations

import math

import torch

VIEWS = ("front", "side", "back", "overhead")
"""The view names, in the order of the indices :func:`view_index` returns."""

OVERHEAD_ELEVATION_DEG = 60.0
"""Cameras above this elevation (degrees) see the overhead view, whatever their azimuth."""
FRONT_HALF_ANGLE_DEG = 45.0
"""Cameras within this azimuth (degrees) of 0 see the front; those within it of 180° see the back."""


def view_suffix(view: str) -> str:
    """The text appended to a prompt for a view, e.g. ``", side view"``."""
    return f", {view} view"


def view_index(azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
    """Index into :data:`VIEWS` per camera. Angles in radians, any shape; returns int64 of the same shape.

    Rule: elevation > 60° → overhead; else |azimuth| < 45° → front; |azimuth| > 135° → back; otherwise side
    (so exactly 45° and 135° are side views). Azimuth is wrapped to (-180°, 180°] first. Angles are compared
    in degrees rounded to 1e-4°, so that boundary values survive the trip through radians.
    """

    def degrees(angle: torch.Tensor) -> torch.Tensor:
        return torch.round(torch.rad2deg(angle.double()) * 1e4) / 1e4

    az = torch.remainder(degrees(azimuth) + 180.0, 360.0) - 180.0
    az = torch.where(az == -180.0, torch.full_like(az, 180.0), az).abs()
    index = torch.full_like(az, VIEWS.index("side"), dtype=torch.long)
    index = torch.where(az < FRONT_HALF_ANGLE_DEG, VIEWS.index("front"), index)
    index = torch.where(az > 180.0 - FRONT_HALF_ANGLE_DEG, VIEWS.index("back"), index)
    overhead = degrees(elevation) > OVERHEAD_ELEVATION_DEG
    return torch.where(overhead, VIEWS.index("overhead"), index)


def view_for_angles(azimuth_deg: float, elevation_deg: float) -> str:
    """The view name for one camera given in degrees (a convenience over :func:`view_index`)."""
    index = view_index(torch.tensor(math.radians(azimuth_deg)), torch.tensor(math.radians(elevation_deg)))
    return VIEWS[int(index)]
