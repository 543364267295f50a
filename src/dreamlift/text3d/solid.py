"""The cleaned solid of a density grid (the export's ``solidify``): the SDS noise's tunnels, bridges, cavities and
floaters removed, the shape's own holes kept, and its surface smoothed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import trimesh
from scipy import ndimage

if TYPE_CHECKING:
    from dreamlift.text3d.export_config import ExportConfig


def solid_grid(occupied: np.ndarray, config: ExportConfig) -> np.ndarray:
    """A smooth occupancy in [0, 1] (mesh it at ½) of the solid that ``occupied`` (bools, padded with one empty
    cell) describes: closed by a ball of ``handle_size`` cells and opened by one of ``bridge_size`` (tunnels and
    thin bridges of SDS noise go, the shape's own holes stay), enclosed cavities filled, pieces smaller than
    ``min_component_fraction`` of the largest dropped, then blurred by a Gaussian of ``smoothing`` cells so
    marching cubes gives a smooth surface."""
    margin = max(config.handle_size, config.bridge_size) + 1  # room outside, so closing never glues the solid to
    solid = np.pad(occupied, margin)  # the grid's faces
    if config.handle_size > 0:
        solid = ndimage.binary_closing(solid, ball(config.handle_size))
    if config.bridge_size > 0:
        solid = ndimage.binary_opening(solid, ball(config.bridge_size))
    solid = solid[margin:-margin, margin:-margin, margin:-margin]
    solid = ndimage.binary_fill_holes(solid)
    labels, count = ndimage.label(solid)
    if count > 1:
        sizes = ndimage.sum_labels(solid, labels, index=np.arange(1, count + 1))
        solid = np.isin(labels, 1 + np.flatnonzero(sizes >= config.min_component_fraction * sizes.max()))
    return ndimage.gaussian_filter(solid.astype(np.float32), sigma=config.smoothing)


def ball(radius: int) -> np.ndarray:
    """The structuring element of the morphology: the cells within ``radius`` steps along the axes (an octahedron)."""
    return ndimage.iterate_structure(ndimage.generate_binary_structure(3, 1), radius)


def drop_floaters(mesh: trimesh.Trimesh, min_fraction: float) -> trimesh.Trimesh:
    """The mesh without connected pieces of fewer than ``min_fraction`` of the largest piece's faces."""
    pieces = mesh.split(only_watertight=False)
    if len(pieces) <= 1:
        return mesh
    largest = max(len(p.faces) for p in pieces)
    return trimesh.util.concatenate([p for p in pieces if len(p.faces) >= min_fraction * largest])
