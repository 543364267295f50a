"""The colours of a scene's exported surface read off its renders: a Gaussian scene's always, any scene's (a NeRF,
Gaussians, the refine stage's DMTet mesh) when the prior redraws them.

3D Gaussians have no albedo field: the density-weighted mean of their colours at a surface point mixes in
Gaussians that no render shows (inside the solid, or behind the front ones), whose colours the guidance never
set, and comes out greyer and blotchier than the renders. DreamGaussian bakes its mesh's texture from renders;
so does this, for vertex colours, baked textures and the turntable alike: the Gaussians are drawn from rings of
views around the object and from above and below, each pixel they cover is lifted to the world point its depth
puts it at (:func:`~dreamlift.render.gaussians.covered_pixels`), and a surface point takes the
inverse-distance-weighted mean colour of the nearest of those points.

Score distillation leaves colours pale, speckled and off in hue, the Gaussians' renders and a NeRF's albedo field
alike (the NeRF's red cube comes out pink): it matches the renders' latents, and the VAE's encoder hardly tells some
colours apart (the embedded one encodes a blue-violet like a purple, a pink like a red). DreamGaussian's second
stage refines its texture towards the renders redrawn by the prior (noised part of the way, denoised again: SDEdit),
whose colours are the prior's own. With ``redraw`` so does this, for every scene kind (a NeRF's pixels are lifted
to their expected ray distance): each covered pixel takes the hue and saturation the prior's redrawing of its view
has there, at the brightness of the render (the prior draws its objects shaded, and a mesh's colours are albedo);
pixels the redrawing shows as background (its silhouette is not quite the render's) are left out, and the surface
takes its colour from the others: taking those pixels too makes a surface blotchy with the background's grey, and
shifting every colour by the redrawings' mean hue and saturation instead keeps the renders' speckles
(docs/benchmarks.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.spatial import cKDTree

from dreamlift.scene.background import background_mask
from dreamlift.scene.cameras import Cameras, orbit_cameras
from dreamlift.text3d.redraw import PriorRedraw

if TYPE_CHECKING:
    from dreamlift.text3d.scenes import Scene


def colour_cameras(azimuths: int, elevations: tuple[float, ...], distance: float = 2.0, fov: float = 45.0) -> Cameras:
    """Rings of ``azimuths`` cameras at each of ``elevations`` (degrees; every other ring turned half a step, so
    that the rings' views interleave) and one camera straight above and one below (±89°), ``distance`` from the
    origin with a vertical field of view of ``fov`` degrees."""
    step = 360.0 / azimuths
    angles = [(a * step + (step / 2) * (ring % 2), e) for ring, e in enumerate(elevations) for a in range(azimuths)]
    angles += [(0.0, 89.0), (0.0, -89.0)]
    azimuth, elevation = torch.deg2rad(torch.tensor(angles)).unbind(-1)
    count = len(angles)
    return orbit_cameras(azimuth, elevation, torch.full((count,), distance), torch.full((count,), math.radians(fov)))


def with_brightness_of(colours: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``colours`` N×3 scaled to the brightness (HSV value, the largest channel) of ``reference`` N×3: their hue
    and saturation at the reference's value. A black colour, which has neither, stays black."""
    value, reference_value = colours.amax(-1, keepdim=True), reference.amax(-1, keepdim=True)
    return colours * reference_value / value.clamp(min=1e-6)


class RenderedColours:
    """Colours N×3 in [0, 1] at world points N×3 on a scene's surface, as its renders show them (Gaussians, which
    have no albedo field; and any scene whose colours the prior redraws).

    ``size``: the renders' side in pixels (the training renders' 64 by default: finer ones cost time and change
    little); ``azimuths`` and ``elevations``: the rings of views (:func:`colour_cameras`); ``neighbours``: how many
    of the nearest rendered points a colour is averaged over; ``min_opacity``: how covered a pixel must be to
    count; ``redraw``: the prior's redrawing of the views (:class:`PriorRedraw`), whose hue and saturation the
    colours take where it shows the object; None keeps the renders' colours. An empty scene (no pixel covered)
    gives grey everywhere.
    """

    def __init__(
        self,
        scene: Scene,
        size: int = 64,
        azimuths: int = 8,
        elevations: tuple[float, ...] = (-30.0, 0.0, 30.0, 60.0),
        neighbours: int = 8,
        min_opacity: float = 0.5,
        batch: int = 10,
        redraw: PriorRedraw | None = None,
    ):
        device = next(scene.parameters()).device
        cameras = colour_cameras(azimuths, elevations).to(device)
        views = [
            scene.covered_pixels(cameras[start : start + batch], size, min_opacity)
            for start in range(0, len(cameras), batch)
        ]
        colours = torch.cat([view.albedo for view in views])
        points = torch.cat([view.points for view in views])
        if redraw is not None and len(colours):
            redrawn = redraw(torch.cat([view.images for view in views]), cameras)  # B×3×S×S
            covered = torch.cat([view.mask for view in views])  # B×S×S
            drawn = background_mask(redrawn, (size, size), redraw.config.background_tolerance)[:, 0] == 0
            keep = drawn[covered]  # P: the covered pixels where the redrawing shows the object
            if keep.any():
                colours = with_brightness_of(redrawn.permute(0, 2, 3, 1)[covered], colours)[keep]
                points = points[keep]
        self.points = points.cpu().numpy()  # P×3 world points of covered pixels
        self.colours = colours.cpu().numpy()  # P×3 their colours
        self.neighbours = min(neighbours, len(self.points))
        self.tree = cKDTree(self.points) if len(self.points) else None

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        if self.tree is None:
            return torch.full_like(points, 0.5)
        distances, indices = self.tree.query(points.detach().cpu().numpy(), k=self.neighbours)
        distances, indices = distances.reshape(len(points), -1), indices.reshape(len(points), -1)
        weights = 1.0 / (distances + 1e-3)  # N×k; the 1e-3 (world units) keeps a point on a sample finite
        colours = (self.colours[indices] * weights[..., None]).sum(1) / weights.sum(1, keepdims=True)
        return torch.as_tensor(colours.astype(np.float32), device=points.device)
