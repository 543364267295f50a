"""How faithful an exported mesh is to the primitive its prompt names: topology, surface, fit, fog and colour.

The embedded prior knows five primitives (:data:`~dreamlift.embedded.shapes.SHAPES`), so a text3d result for one of
its prompts can be judged on ground truth:

- **topology**: the pieces of the mesh and the genus of its largest piece (0 for every primitive but the torus, 1);
  a sponge has a genus in the hundreds;
- **area over hull**: the surface area over its convex hull's; 1 for a convex solid, 0.8–1.05 for the dataset's
  tori, far above for a sponge or a shredded surface;
- **best-fit IoU**: the mesh's solid (voxelised, cavities filled) against the prompted primitive whose size,
  proportions, yaw and position are fitted to it;
- **fog**: the share of object pixels that are neither clear nor opaque in renders of the scene (see
  :func:`fog_fraction`);
- **colour**: the hue distance and the saturation of the mean vertex colour against the palette albedo.

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

from dreamlift.embedded.shapes import COLOURS, signed_distance
from dreamlift.scene.cameras import Z_UP_TO_Y_UP
from dreamlift.scene.fields import cell_centres

SHAPE_GENUS = {"cube": 0, "sphere": 0, "cone": 0, "cylinder": 0, "torus": 1}
"""The genus of each primitive's surface."""
FIT_GRID = 64
"""Cells per side of the voxel grid over the scene cube on which IoUs are measured."""
COLUMN_NUDGE = 1.234e-4
"""Shift (in cells) of a mesh against the voxel columns of :func:`solid_occupancy`, off every grid-aligned vertex."""
MAX_AREA_OVER_HULL = 1.3
"""The most surface area over convex-hull area a solid of a prompted shape may have: 1 for the convex primitives,
0.8–1.05 for the dataset's tori; a sponge or a shredded surface has far more."""


def read_exported_mesh(path) -> trimesh.Trimesh:
    """An exported mesh file (y up) in dreamlift's world frame (z up)."""
    mesh = trimesh.load(path, force="mesh", process=True)
    mesh.apply_transform(np.linalg.inv(Z_UP_TO_Y_UP))
    return mesh


@dataclass
class Topology:
    pieces: int
    """Connected pieces of the mesh."""
    genus: int | None
    """Genus of the largest piece (by area); None when that piece is not closed (its genus is undefined)."""
    watertight: bool
    """Whether the largest piece is closed."""


def topology(mesh: trimesh.Trimesh) -> Topology:
    """Pieces, and the genus of the largest piece from its Euler characteristic χ = 2 − 2g."""
    if len(mesh.faces) == 0:
        return Topology(0, None, False)
    pieces = mesh.split(only_watertight=False, repair=False)  # as it is: no holes filled
    largest = max(pieces, key=lambda piece: piece.area)
    closed = bool(largest.is_watertight)
    genus = (2 - largest.euler_number) // 2 if closed else None
    return Topology(len(pieces), genus, closed)


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


def solid_occupancy(mesh: trimesh.Trimesh, bound: float = 1.0, resolution: int = FIT_GRID) -> torch.Tensor:
    """Which cells of a resolution³ grid over [−bound, bound]³ (in :func:`cell_centres`'s order) lie inside the
    mesh (resolution³ bools), by the parity of the surface's crossings along each vertical line through the cell
    centres: a cell is inside when an odd number of triangles cross its column below its centre. Exact for a
    closed mesh up to the grid's sampling; enclosed cavities count as empty, as they are."""
    inside = torch.zeros(resolution, resolution, resolution, dtype=torch.bool)
    if len(mesh.faces) == 0:
        return inside.reshape(-1)
    pitch = 2 * bound / resolution
    # F×3×3 in cell-centre index units, nudged off the columns: marching-cubes vertices sit exactly on them, and a
    # column through a vertex or an edge would count its crossing twice or not at all.
    triangles = (mesh.triangles + bound) / pitch - 0.5 + np.array([COLUMN_NUDGE, 2 * COLUMN_NUDGE, 0.0])
    lo = np.ceil(triangles[:, :, :2].min(axis=1)).astype(np.int64).clip(0, resolution - 1)
    hi = np.floor(triangles[:, :, :2].max(axis=1)).astype(np.int64).clip(0, resolution - 1)
    spans = (hi - lo + 1).clip(min=0)
    counts = spans[:, 0] * spans[:, 1]
    owner = np.repeat(np.arange(len(triangles)), counts)  # one row per (triangle, column under its xy box)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    column = lo[owner] + np.stack([offset // spans[owner, 1], offset % spans[owner, 1]], axis=1)
    a, b, c = (triangles[owner, k] for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    w_a = (b[:, 0] - column[:, 0]) * (c[:, 1] - column[:, 1]) - (c[:, 0] - column[:, 0]) * (b[:, 1] - column[:, 1])
    w_b = (c[:, 0] - column[:, 0]) * (a[:, 1] - column[:, 1]) - (a[:, 0] - column[:, 0]) * (c[:, 1] - column[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):  # flat triangles (area 0) are dropped by ``hit``
        w_a, w_b = w_a / area, w_b / area
        w_c = 1 - w_a - w_b
        hit = (area != 0) & (w_a >= 0) & (w_b >= 0) & (w_c > 0)
        z = (w_a * a[:, 2] + w_b * b[:, 2] + w_c * c[:, 2])[hit]
    first_above = np.clip(np.floor(z).astype(np.int64) + 1, 0, resolution)  # first cell whose centre is above z
    crossings = np.zeros((resolution, resolution, resolution + 1), dtype=np.int64)
    np.add.at(crossings, (column[hit, 0], column[hit, 1], first_above), 1)
    inside = torch.as_tensor(np.cumsum(crossings, axis=2)[:, :, :resolution] % 2 == 1)
    return inside.reshape(-1)


@dataclass
class PrimitiveFit:
    iou: float
    """Intersection over union of the mesh's solid and the fitted primitive, on the fit grid."""
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


def best_fit_iou(mesh: trimesh.Trimesh, shape: str, bound: float = 1.0, steps: int = 150) -> PrimitiveFit:
    """Fit ``shape``'s size, proportions, yaw and position to the mesh's solid (soft IoU by Adam, several yaw
    starts for the cube), then measure the hard IoU on the fit grid."""
    target = solid_occupancy(mesh, bound).float()
    if target.sum() == 0:
        return PrimitiveFit(0.0, (0.0, 0.0, 0.0), 0.0, (0.0, 0.0, 0.0))
    points = cell_centres(FIT_GRID, bound)
    inside = points[target.bool()]
    # Start from the bounding box of the solid: its centre is the primitive's (a cone's centroid lies a quarter of
    # the way up, and a start there drifts to a cone twice too tall).
    low, high = inside.min(0).values, inside.max(0).values
    centre0 = (low + high) / 2
    extent0 = ((high - low) / 2 + bound / FIT_GRID).clamp(min=1e-3)
    temperature = 2 * bound / FIT_GRID
    best: PrimitiveFit | None = None
    for yaw0 in (0.0, math.pi / 8, math.pi / 4, 3 * math.pi / 8) if shape == "cube" else (0.0,):
        log_params = _initial_params(shape, extent0).log().requires_grad_(True)
        yaw = torch.tensor(yaw0, requires_grad=True)
        centre = centre0.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([log_params, yaw, centre], lr=0.02)
        for _ in range(steps):
            soft = torch.sigmoid(-signed_distance(points - centre, shape, log_params.exp(), yaw) / temperature)
            intersection = (soft * target).sum()
            loss = -intersection / (soft.sum() + target.sum() - intersection)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            hard = signed_distance(points - centre, shape, log_params.exp(), yaw) < 0
            iou = float((hard & target.bool()).sum() / (hard | target.bool()).sum())
        if best is None or iou > best.iou:
            params = tuple(log_params.exp().tolist())
            best = PrimitiveFit(iou, params, yaw.item(), tuple(centre.tolist()))
    return best


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
