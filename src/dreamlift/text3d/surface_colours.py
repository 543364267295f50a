"""The colours of a Gaussian scene's exported surface, read off the Gaussians' own renders.

3D Gaussians have no albedo field: the density-weighted mean of their colours at a surface point mixes in
Gaussians that no render shows (inside the solid, or behind the front ones), whose colours the guidance never
set, and comes out greyer and blotchier than the renders. DreamGaussian bakes its mesh's texture from renders;
so does this, for vertex colours, baked textures and the turntable alike: the Gaussians are drawn from rings of
views around the object and from above and below, each pixel they cover is lifted to the world point its depth
puts it at (:func:`~dreamlift.render.gaussians.covered_pixels`), and a surface point takes the
inverse-distance-weighted mean colour of the nearest of those points.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

from dreamlift.render.gaussians import covered_pixels
from dreamlift.scene.cameras import Cameras, orbit_cameras
from dreamlift.text3d.scenes import GaussianScene


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


class RenderedColours:
    """Colours N×3 in [0, 1] at world points N×3 on a Gaussian scene's surface, as its renders show them.

    ``size``: the renders' side in pixels (the training renders' 64 by default: finer ones cost time and change
    little); ``azimuths`` and ``elevations``: the rings of views (:func:`colour_cameras`); ``neighbours``: how many
    of the nearest rendered points a colour is averaged over; ``min_opacity``: how covered a pixel must be to
    count. An empty scene (no pixel covered) gives grey everywhere.
    """

    def __init__(
        self,
        scene: GaussianScene,
        size: int = 64,
        azimuths: int = 8,
        elevations: tuple[float, ...] = (-30.0, 0.0, 30.0, 60.0),
        neighbours: int = 8,
        min_opacity: float = 0.5,
        batch: int = 10,
    ):
        device = scene.gaussians.means.device
        cameras = colour_cameras(azimuths, elevations).to(device)
        points, colours = [], []
        for start in range(0, len(cameras), batch):
            seen = covered_pixels(
                scene.gaussians, cameras[start : start + batch], size, scene.splatting_config, min_opacity
            )
            points.append(seen[0].cpu())
            colours.append(seen[1].cpu())
        self.points = torch.cat(points).numpy()  # P×3 world points of covered pixels
        self.colours = torch.cat(colours).numpy()  # P×3 their albedo
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
