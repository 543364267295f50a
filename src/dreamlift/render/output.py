"""What the renderers return, and the shading modes they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Shading = Literal["albedo", "lambertian", "textureless"]
"""``albedo``: plain colour; ``lambertian``: albedo under a light; ``textureless``: white under a light."""


@dataclass
class RenderOutput:
    """A rendered batch. rgb B×3×H×W composited on the background; opacity and depth B×1×H×W; normal
    B×3×H×W (world, composited) or None; backfacing: B×1×H×W, Σ_i sg(w_i)·max(0, n_i·d)² along each ray, how much
    the visible normals face away from the camera (shaded volume renders; None otherwise: DreamFusion's orientation
    penalty is its mean, text3d/nerf.py);
    samples: how many samples reached the field (volume) or how many pixels a surface covers (mesh);
    mesh: the rasterized mesh (vertices M×3, faces K×3), for the mesh regularisers; None for volume renders;
    optical_depth: B×1×H×W, Σ_i σ_i·δ_i along each ray (volume renders; for Gaussians Σ −log(1 − α_i) over the
    splats a pixel crosses; None for meshes). Unlike the opacity 1 − exp(−Σσδ), it does not saturate, so it
    still has a gradient where a ray crosses a thick solid.
    screen_means: B×N×2, the N Gaussians' means on screen (pixels), whose ``.grad`` after a backward pass is the
    view-space gradient that densification reads; radii: B×N, their footprints in pixels (0: not drawn); both
    None except for Gaussian renders."""

    rgb: torch.Tensor
    opacity: torch.Tensor
    depth: torch.Tensor
    normal: torch.Tensor | None
    backfacing: torch.Tensor | None
    samples: int
    mesh: tuple[torch.Tensor, torch.Tensor] | None = None
    optical_depth: torch.Tensor | None = None
    screen_means: torch.Tensor | None = None
    radii: torch.Tensor | None = None


@dataclass
class CoveredPixels:
    """What a scene shows from B cameras at S×S: ``mask`` B×S×S, the pixels it covers at least a given
    opacity; of those P pixels (in ``mask``'s order), ``points`` P×3, the world points they show, and ``albedo``
    P×3, their colour without background or shading; and ``images`` B×3×S×S, the albedo renders on the
    background, as the guidance sees them (text3d/surface_colours.py reads them)."""

    mask: torch.Tensor
    points: torch.Tensor
    albedo: torch.Tensor
    images: torch.Tensor
