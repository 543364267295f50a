"""The surface a stage-1 scene (a NeRF or 3D Gaussians) is exported as: marching cubes on its density at the
surface's density, or, with ``solidify``, on the cleaned solid that density describes (text3d/solid.py).

The density of the surface, when not given, is the scene's own (an SDF field's zero level set, the Gaussians'
configured one) or read off its renders (:meth:`~dreamlift.text3d.scenes.VolumeScene.threshold_from_renders`),
so that the mesh surface is where the renders turn from see-through to solid, whatever the scale of the density.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from skimage import measure

from dreamlift.scene.fields import cell_centres, evaluate_in_chunks
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.solid import drop_floaters, solid_grid

if TYPE_CHECKING:
    from dreamlift.text3d.scenes import VolumeScene


def surface_threshold(scene: VolumeScene, padded: np.ndarray, given: float | None = None) -> float:
    """The density of a stage-1 scene's surface: ``given``, else the scene's own (an SDF field's zero level set,
    the Gaussians' configured one), else read off its renders, given ``padded``, the padded :func:`density_grid`."""
    if given is not None:
        return given
    own = scene.surface_density()
    if own is not None:
        return own
    return scene.threshold_from_renders(padded)


@torch.no_grad()
def density_grid(scene: VolumeScene, resolution: int) -> np.ndarray:
    """Density at the centres of a resolution³ grid over the scene cube (float32, indexed [x, y, z])."""
    device = next(scene.parameters()).device
    values = evaluate_in_chunks(scene.density, cell_centres(resolution, scene.bound, device))
    return values.reshape(resolution, resolution, resolution).float().cpu().numpy()


@dataclass
class SurfaceVolume:
    """What marching cubes meshes: ``values`` at the cell centres of a resolution³ grid over the scene cube padded
    with one empty cell on every side (float32, (resolution + 2)³, indexed [x, y, z]), whose surface is where they
    cross ``level`` (inside above it); ``threshold`` is the density the surface was taken at."""

    values: np.ndarray
    level: float
    threshold: float
    bound: float

    @property
    def cell(self) -> float:
        """Cell size in world units."""
        return 2 * self.bound / (self.values.shape[0] - 2)

    def world(self, index: np.ndarray) -> np.ndarray:
        """World points (…×3) of fractional padded grid indices (…×3): unpadded cell i has its centre at
        (i + ½)·cell − bound and sits at padded index i + 1."""
        return (index - 0.5) * self.cell - self.bound

    def sample(self, points: torch.Tensor) -> torch.Tensor:
        """Trilinear values N at world points N×3 inside the scene cube."""
        return sample_padded_grid(self.values, self.bound, points)

    def normalised_sdf(self, points: torch.Tensor) -> torch.Tensor:
        """(level − value) / level at world points N×3, clamped to [−1, 1]: negative inside, zero on the surface
        (what the refine stage fits its DMTet to)."""
        return ((self.level - self.sample(points)) / self.level).clamp(-1, 1)


def sample_padded_grid(values: np.ndarray, bound: float, points: torch.Tensor) -> torch.Tensor:
    """Trilinear values N at world points N×3 inside the scene cube [−bound, bound]³ of a grid laid out as
    :class:`SurfaceVolume`'s: cell centres over the cube, padded with one cell on every side ([x, y, z])."""
    grid = torch.from_numpy(values).to(points)
    cell = 2 * bound / (grid.shape[0] - 2)
    index = (points + bound) / cell + 0.5  # the inverse of :meth:`SurfaceVolume.world`
    normalised = index / (grid.shape[0] - 1) * 2 - 1
    where = normalised.flip(-1).reshape(1, 1, 1, -1, 3)  # grid_sample reads (z, y, x) against [x, y, z] values
    return F.grid_sample(grid[None, None], where, align_corners=True).reshape(-1)


@torch.no_grad()
def surface_volume(scene: VolumeScene, config: ExportConfig) -> SurfaceVolume:
    """The density on the export grid at the (auto) threshold, or with ``solidify`` the smooth solid it describes
    (:func:`solid_grid`, surface at ½)."""
    values = np.pad(density_grid(scene, config.resolution), 1, constant_values=0.0)
    threshold = surface_threshold(scene, values, config.threshold)
    level = threshold
    if config.solidify:
        values, level = solid_grid(values > threshold, config), 0.5
    return SurfaceVolume(values, level, threshold, scene.bound)


@torch.no_grad()
def extract_mesh(scene: VolumeScene, config: ExportConfig) -> tuple[trimesh.Trimesh, float]:
    """Marching cubes on the :func:`surface_volume`, floaters removed; world (z-up) axes, no colours.

    Returns the mesh and the density threshold used. The padding's empty cells close the mesh.
    """
    volume = surface_volume(scene, config)
    if volume.values.max() <= volume.level:
        return trimesh.Trimesh(), volume.threshold
    vertices, faces, _, _ = measure.marching_cubes(volume.values, level=volume.level)
    mesh = trimesh.Trimesh(volume.world(vertices), faces[:, ::-1], process=True)
    mesh = drop_floaters(mesh, config.min_component_fraction)
    return mesh, volume.threshold
