"""Which points of a grid lie inside a closed mesh, by the parity of the surface's crossings along vertical lines.

The fidelity measures (:mod:`dreamlift.embedded.fidelity`) voxelise an exported mesh with it, and the
cross-section measures (:mod:`dreamlift.embedded.cross_sections`) rasterise its horizontal slices.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh

COLUMN_NUDGE = 1.234e-4
"""Shift (in grid steps) of a mesh against the grid's vertical lines, off every grid-aligned vertex: marching-cubes
vertices sit exactly on them, and a line through a vertex or an edge would count its crossing twice or not at all."""


def inside_mesh(mesh: trimesh.Trimesh, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> torch.Tensor:
    """Whether each grid point (xs[i], ys[j], zs[k]) lies inside the mesh: X×Y×Z bools.

    ``xs`` and ``ys`` are evenly spaced and ascending, ``zs`` ascending (world units). A point is inside when an odd
    number of triangles cross its vertical line below it: exact for a closed mesh; enclosed cavities count as
    empty, as they are."""
    xs, ys, zs = (np.asarray(axis, dtype=np.float64) for axis in (xs, ys, zs))
    inside = np.zeros((len(xs), len(ys), len(zs)), dtype=bool)
    if len(mesh.faces) == 0 or inside.size == 0:
        return torch.as_tensor(inside)
    x_step = xs[1] - xs[0] if len(xs) > 1 else 1.0
    y_step = ys[1] - ys[0] if len(ys) > 1 else 1.0
    # F×3×3 with x and y in grid-index units (line i at x = i), nudged off the lines; z stays in world units.
    triangles = np.array(mesh.triangles, dtype=np.float64)
    triangles[:, :, 0] = (triangles[:, :, 0] - xs[0]) / x_step + COLUMN_NUDGE
    triangles[:, :, 1] = (triangles[:, :, 1] - ys[0]) / y_step + 2 * COLUMN_NUDGE
    size = np.array([len(xs), len(ys)])
    lo = np.ceil(triangles[:, :, :2].min(axis=1)).astype(np.int64).clip(0, size - 1)
    hi = np.floor(triangles[:, :, :2].max(axis=1)).astype(np.int64).clip(0, size - 1)
    spans = (hi - lo + 1).clip(min=0)
    counts = spans[:, 0] * spans[:, 1]
    owner = np.repeat(np.arange(len(triangles)), counts)  # one row per (triangle, line under its xy box)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    line = lo[owner] + np.stack([offset // spans[owner, 1], offset % spans[owner, 1]], axis=1)
    a, b, c = (triangles[owner, k] for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    w_a = (b[:, 0] - line[:, 0]) * (c[:, 1] - line[:, 1]) - (c[:, 0] - line[:, 0]) * (b[:, 1] - line[:, 1])
    w_b = (c[:, 0] - line[:, 0]) * (a[:, 1] - line[:, 1]) - (a[:, 0] - line[:, 0]) * (c[:, 1] - line[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):  # flat triangles (area 0) are dropped by ``hit``
        w_a, w_b = w_a / area, w_b / area
        w_c = 1 - w_a - w_b
        hit = (area != 0) & (w_a >= 0) & (w_b >= 0) & (w_c > 0)
        z = (w_a * a[:, 2] + w_b * b[:, 2] + w_c * c[:, 2])[hit]
    first_above = np.searchsorted(zs, z, side="right")  # the first grid point above each crossing
    crossings = np.zeros((len(xs), len(ys), len(zs) + 1), dtype=np.int64)
    np.add.at(crossings, (line[hit, 0], line[hit, 1], first_above), 1)
    inside = np.cumsum(crossings, axis=2)[:, :, : len(zs)] % 2 == 1
    return torch.as_tensor(inside)
