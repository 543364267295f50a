"""How faithful an exported mesh is to the primitive its prompt names: topology, surface, fit, fog and colour.

The embedded prior knows five primitives (:data:`~dreamlift.embedded.shapes.SHAPES`), so a text3d result for one of
its prompts can be judged on ground truth:

- **topology**: the pieces of the mesh and the genus of its largest piece (0 for every primitive but the torus, 1);
  a sponge has a genus in the hundreds;
- **area over hull**: the surface area over its convex hull's; 1 for a convex solid, 0.8–1.05 for the dataset's
  tori, far above for a sponge or a shredded surface;
- **best-fit IoU**: the mesh's solid (voxelised; enclosed cavities count as empty) against the prompted primitive
  whose size, proportions, yaw and position are fitted to it;
- **smoothness**: the surface area over that fitted primitive's; lumps and waves add area;
- **fog**: the share of object pixels that are neither clear nor opaque in renders of the scene (see
  :func:`fog_fraction`);
- **colour**: the hue distance and the saturation of the mean vertex colour against the palette albedo.

The outline of the horizontal cross-sections (a cube's square, the others' round) is measured in
:mod:`dreamlift.embedded.cross_sections`.

Meshes are in dreamlift's world frame (z up), as ``scene_mesh`` returns them; read an exported file with
:func:`read_exported_mesh`.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from dreamlift.embedded.occupancy import inside_mesh
from dreamlift.embedded.shapes import COLOURS, signed_distance
from dreamlift.scene.cameras import Z_UP_TO_Y_UP
from dreamlift.scene.fields import cell_centres
from dreamlift.scene.topology import Topology

SHAPE_GENUS = {"cube": 0, "sphere": 0, "cone": 0, "cylinder": 0, "torus": 1}
"""The genus of each primitive's surface."""
FIT_GRID = 64
"""Cells per side of the grid around a mesh (:func:`mesh_grid`) on which a primitive is fitted to it."""
IOU_GRID = 128
"""Cells per side of the grid around a mesh on which the fitted primitive's IoU is measured: fine enough that a
marching-cubes mesh of an exact primitive of the sizes the prior draws scores at least 0.95
(tests/test_fidelity.py)."""
FIT_MARGIN = 0.3
"""Space around a mesh in the grids of the fit, as a share of its largest extent on each side: room for a fitted
primitive larger than the mesh."""
MIN_FIT_IOU = 0.85
"""The least best-fit IoU of a mesh that has the prompted shape (a cylinder inscribed in a cube scores 0.79)."""
MAX_AREA_OVER_HULL = 1.3
"""The most surface area over convex-hull area a solid of a prompted shape may have: 1 for the convex primitives,
0.8–1.05 for the dataset's tori; a sponge or a shredded surface has far more."""


def read_exported_mesh(path) -> trimesh.Trimesh:
    """An exported mesh file (y up) in dreamlift's world frame (z up)."""
    mesh = trimesh.load(path, force="mesh", process=True)
    mesh.apply_transform(np.linalg.inv(Z_UP_TO_Y_UP))
    return mesh


def is_solid(shape: str, shape_topology: Topology, area_over_hull: float) -> bool:
    """Whether a mesh is a solid of the prompted shape's topology: its largest piece closed with the shape's genus,
    and no more surface than :data:`MAX_AREA_OVER_HULL` times its convex hull's."""
    return shape_topology.genus == SHAPE_GENUS[shape] and area_over_hull <= MAX_AREA_OVER_HULL


def hull_area_ratio(mesh: trimesh.Trimesh) -> float:
    """Surface area over the convex hull's (inf for a flat or empty mesh)."""
    if len(mesh.faces) == 0:
        return math.inf
    hull = mesh.convex_hull.area
    return float(mesh.area / hull) if hull > 0 else math.inf


@dataclass
class MeshGrid:
    """A cubic grid of cells around a mesh, and which of their centres lie inside it."""

    points: torch.Tensor
    """Cell centres, R³×3 (world units, in :func:`cell_centres`'s order)."""
    inside: torch.Tensor
    """R³ bools (:func:`~dreamlift.embedded.occupancy.inside_mesh`)."""
    cell: float
    """A cell's side (world units)."""


def mesh_grid(mesh: trimesh.Trimesh, resolution: int) -> MeshGrid:
    """A resolution³ grid over a cube around the mesh's bounding box: its largest extent and
    :data:`FIT_MARGIN` of that on each side, so that the grid is as fine for a small object as for a large one."""
    low, high = mesh.bounds
    half_side = float((high - low).max()) * (0.5 + FIT_MARGIN)
    axis = (np.arange(resolution) + 0.5) / resolution * 2 * half_side - half_side
    centre = (low + high) / 2
    inside = inside_mesh(mesh, centre[0] + axis, centre[1] + axis, centre[2] + axis).reshape(-1)
    points = cell_centres(resolution, half_side) + torch.tensor(centre, dtype=torch.float32)
    return MeshGrid(points, inside, 2 * half_side / resolution)


@dataclass
class PrimitiveFit:
    iou: float
    """Intersection over union of the mesh's solid and the fitted primitive, on the :data:`IOU_GRID`."""
    params: tuple[float, float, float]
    """The primitive's fitted size parameters (a, b, c as in the dataset, world units)."""
    yaw: float
    """Its fitted rotation about z (radians)."""
    centre: tuple[float, float, float]
    """Its fitted position (world units)."""


def _initial_params(shape: str, extent: torch.Tensor) -> torch.Tensor:
    """Size parameters (a, b, c) of ``shape`` whose bounding box has half-extents ``extent`` (x, y, z)."""
    radius, half_height = extent[:2].mean(), extent[2]
    if shape == "cube":
        return extent.clone()
    if shape == "sphere":
        return extent.mean().repeat(3)
    if shape == "torus":
        return torch.stack([radius * 0.7, radius * 0.3, half_height])
    return torch.stack([radius, radius, half_height])  # cone, cylinder: a radius, c half height


def best_fit_iou(mesh: trimesh.Trimesh, shape: str, steps: int = 150) -> PrimitiveFit:
    """Fit ``shape``'s size, proportions, yaw and position to the mesh's solid on a :data:`FIT_GRID` grid around
    it (soft IoU by Adam, several yaw starts for the cube), then measure the hard IoU of the best fit on an
    :data:`IOU_GRID` grid."""
    if len(mesh.faces) == 0:
        return PrimitiveFit(0.0, (0.0, 0.0, 0.0), 0.0, (0.0, 0.0, 0.0))
    grid = mesh_grid(mesh, FIT_GRID)
    target = grid.inside.float()
    if target.sum() == 0:
        return PrimitiveFit(0.0, (0.0, 0.0, 0.0), 0.0, (0.0, 0.0, 0.0))
    inside = grid.points[grid.inside]
    # Start from the bounding box of the solid: its centre is the primitive's (a cone's centroid lies a quarter of
    # the way up, and a start there drifts to a cone twice too tall).
    low, high = inside.min(0).values, inside.max(0).values
    centre0 = (low + high) / 2
    extent0 = ((high - low) / 2 + grid.cell / 2).clamp(min=1e-3)
    best: PrimitiveFit | None = None
    for yaw0 in (0.0, math.pi / 8, math.pi / 4, 3 * math.pi / 8) if shape == "cube" else (0.0,):
        log_params = _initial_params(shape, extent0).log().requires_grad_(True)
        yaw = torch.tensor(yaw0, requires_grad=True)
        centre = centre0.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([log_params, yaw, centre], lr=0.02)
        for _ in range(steps):
            distance = signed_distance(grid.points - centre, shape, log_params.exp(), yaw)
            soft = torch.sigmoid(-distance / grid.cell)
            intersection = (soft * target).sum()
            loss = -intersection / (soft.sum() + target.sum() - intersection)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            hard = signed_distance(grid.points - centre, shape, log_params.exp(), yaw) < 0
            iou = float((hard & grid.inside).sum() / (hard | grid.inside).sum())
        if best is None or iou > best.iou:
            params = tuple(log_params.exp().tolist())
            best = PrimitiveFit(iou, params, yaw.item(), tuple(centre.tolist()))
    fine = mesh_grid(mesh, IOU_GRID)
    with torch.no_grad():
        points = fine.points - torch.tensor(best.centre)
        hard = signed_distance(points, shape, torch.tensor(best.params), torch.tensor(best.yaw)) < 0
    best.iou = float((hard & fine.inside).sum() / (hard | fine.inside).sum())
    return best


def primitive_area(shape: str, params: tuple[float, float, float]) -> float:
    """Surface area (world units²) of the primitive ``shape`` with size parameters (a, b, c) as the dataset draws
    them (:func:`~dreamlift.embedded.shapes.signed_distance`)."""
    a, b, c = params
    if shape == "cube":  # half extents a, b, c
        return 8 * (a * b + b * c + c * a)
    if shape == "sphere":  # radius a
        return 4 * math.pi * a * a
    if shape == "cylinder":  # radius a, half height c
        return 2 * math.pi * a * a + 4 * math.pi * a * c
    if shape == "cone":  # base radius a, height 2c
        return math.pi * a * a + math.pi * a * math.hypot(a, 2 * c)
    return 4 * math.pi**2 * a * b  # torus: radii a (to the tube's centre) and b (of the tube)


def surface_over_primitive(mesh: trimesh.Trimesh, shape: str, fit: PrimitiveFit) -> float:
    """Smoothness: the mesh's surface area over its fitted primitive's (about 1 for a smooth surface of the
    primitive's shape; lumps and waves add area). NaN when nothing was fitted."""
    area = primitive_area(shape, fit.params)
    return float(mesh.area / area) if area > 0 else math.nan


def fog_fraction(opacity: torch.Tensor, low: float = 0.1, high: float = 0.9) -> float:
    """The share of object pixels whose opacity lies strictly between ``low`` and ``high``, in renders V×H×W.

    Object pixels are those with opacity ≥ ``low``; the one-pixel band around the silhouette (opacity ½), where
    antialiasing makes partial coverage right, is left out of both counts."""
    solid = (opacity >= 0.5).float()[:, None]
    grown = F.max_pool2d(solid, 3, stride=1, padding=1)[:, 0] > 0
    shrunk = -F.max_pool2d(-solid, 3, stride=1, padding=1)[:, 0] > 0
    counted = (opacity >= low) & ~(grown & ~shrunk)
    foggy = counted & (opacity < high)
    return float(foggy.sum() / counted.sum()) if counted.any() else 0.0


def mean_colour(mesh: trimesh.Trimesh) -> np.ndarray:
    """The mean vertex colour (3, in [0, 1]) of a mesh with vertex colours (a textured one is sampled first)."""
    visual = mesh.visual if isinstance(mesh.visual, trimesh.visual.ColorVisuals) else mesh.visual.to_color()
    return np.asarray(visual.vertex_colors)[:, :3].mean(0) / 255


def colour_error(mesh: trimesh.Trimesh, colour: str) -> tuple[float, float]:
    """Hue distance (in turns, 0–0.5) of the mean vertex colour from the palette albedo of ``colour``, and the
    ratio of their HSV saturations (1: as saturated as the palette colour)."""
    hue, saturation, _ = colorsys.rgb_to_hsv(*mean_colour(mesh))
    true_hue, true_saturation, _ = colorsys.rgb_to_hsv(*COLOURS[colour])
    distance = abs(hue - true_hue)
    return min(distance, 1 - distance), saturation / true_saturation
