"""What the field leaves transparent: a plain colour, or a small MLP of the view direction; and which pixels of
an image show its background, and which of those the object encloses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class BackgroundConfig:
    """Background behind the field."""

    kind: Literal["solid", "mlp"] = "solid"
    """``solid``: one colour; ``mlp``: a learned colour per view direction."""
    colour: tuple[float, float, float] = (0.94, 0.94, 0.94)
    """The solid colour (RGB in [0, 1]); the embedded prior was trained on plain light backgrounds."""
    hidden_dim: int = 32
    """Width of the MLP background."""
    frequencies: int = 4
    """Sine/cosine frequencies of the direction encoding of the MLP background."""

    def __post_init__(self):
        if not all(0 <= c <= 1 for c in self.colour):
            raise ValueError("background colour components must lie in [0, 1]")
        if self.hidden_dim < 1 or self.frequencies < 0:
            raise ValueError("hidden_dim must be >= 1 and frequencies >= 0")


class Background(nn.Module):
    """Ray directions …×3 (unit, world) → colours …×3 in [0, 1]."""

    def __init__(self, config: BackgroundConfig):
        super().__init__()
        self.config = config
        self.register_buffer("colour", torch.tensor(config.colour, dtype=torch.float32), persistent=False)
        self.mlp = None
        if config.kind == "mlp":
            width = 3 + 6 * config.frequencies
            self.mlp = nn.Sequential(nn.Linear(width, config.hidden_dim), nn.SiLU(), nn.Linear(config.hidden_dim, 3))

    def forward(self, directions: torch.Tensor) -> torch.Tensor:
        if self.mlp is None:
            return self.colour.expand_as(directions)
        bands = 2.0 ** torch.arange(self.config.frequencies, device=directions.device) * torch.pi
        angles = directions[..., None] * bands  # …×3×K
        encoded = torch.cat([directions, angles.sin().flatten(-2), angles.cos().flatten(-2)], dim=-1)
        return torch.sigmoid(self.mlp(encoded))


def border_colour(images: torch.Tensor) -> torch.Tensor:
    """The background colour …×3 of images …×3×H×W on a plain background: the median colour of each one's
    one-pixel border."""
    border = torch.cat([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1)
    return border.median(dim=-1).values


def background_mask(images: torch.Tensor, size: tuple[int, int], tolerance: float) -> torch.Tensor:
    """Background pixels B×1×H×W (1.0, else 0.0; ``size`` = (H, W)) of images B×3×S×S in [0, 1]: those within
    ``tolerance`` in every channel of the image's :func:`border_colour`."""
    background = border_colour(images)[..., None, None]  # B×3×1×1
    mask = ((images - background).abs().amax(dim=1, keepdim=True) < tolerance).float()
    return F.interpolate(mask, size=size, mode="nearest")


def enclosed_background(mask: torch.Tensor) -> torch.Tensor:
    """The background pixels B×1×H×W (1.0, else 0.0) of a background ``mask`` B×1×H×W that no path of background
    pixels (8-connected) joins to the image's border: what the object encloses, such as a torus's hole, and not
    what lies around its outline."""
    reach = torch.zeros_like(mask)  # background reached from the border so far
    for edge in (0, -1):
        reach[..., edge, :] = mask[..., edge, :]
        reach[..., :, edge] = mask[..., :, edge]
    while True:
        grown = F.max_pool2d(reach, 3, stride=1, padding=1) * mask
        if torch.equal(grown, reach):
            return mask - reach
        reach = grown
