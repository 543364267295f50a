"""The outline of a mesh's horizontal cross-sections: square (a cube's) or round (a sphere's, a cone's, a
cylinder's, and a torus's outer rim).

A shape can look right from low cameras and be wrong from above: a squat rounded cylinder (a drum) shows a box's
silhouette from the side. Its horizontal sections tell them apart. Each section is rasterised, its holes filled
(a torus's), and compared with the two outlines by how much of a fitted figure it fills:

- **rectangle fill**: its area over its smallest bounding rectangle's (any orientation): a square or a rectangle
  1, a regular octagon 0.83, a circle π/4 = 0.785;
- **circle fill**: its area over its smallest enclosing circle's: a circle 1, a regular octagon 0.90, a square
  2/π = 0.64.

A section is **square** when its rectangle fill is at least :data:`SQUARE_FILL`, **round** when its circle fill
is at least :data:`ROUND_FILL`; the two exclude each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage
from scipy.spatial import ConvexHull

from dreamlift.embedded.occupancy import inside_mesh

SECTION_HEIGHTS = (0.25, 0.5, 0.75)
"""Heights of the measured sections, as fractions of the mesh's height from its lowest point."""
SECTION_PIXELS = 256
"""Pixels across the mesh's larger horizontal extent in the rasterised sections."""
SQUARE_FILL = 0.9
"""The least rectangle fill of a square section: a square with corners rounded to 2/3 of its half side still
has it; a circle (0.785) and a regular octagon (0.83) do not."""
ROUND_FILL = 0.85
"""The least circle fill of a round section: a regular octagon (0.90) has it; a square (0.64) and a 3:2 ellipse
(0.67) do not."""
OUTLINE_MARKS = {"square": "□", "round": "○", "other": "?", "empty": "-"}
"""The one-character mark of each outline, as the benches print them."""
SHAPE_OUTLINE = {"cube": "square", "sphere": "round", "cone": "round", "cylinder": "round", "torus": "round"}
"""The outline of each primitive's horizontal sections."""


@dataclass
class CrossSection:
    """One horizontal section of a mesh."""

    height: float
    """Where it is cut, as a fraction of the mesh's height."""
    area: float
    """Area of its outer outline, holes filled (world units²); 0 where the cut misses the mesh."""
    rectangle_fill: float
    """Area over the smallest bounding rectangle's (0 when empty)."""
    circle_fill: float
    """Area over the smallest enclosing circle's (0 when empty)."""

    @property
    def outline(self) -> str:
        """``square``, ``round``, ``other`` or ``empty``."""
        if self.area == 0:
            return "empty"
        if self.rectangle_fill >= SQUARE_FILL:
            return "square"
        return "round" if self.circle_fill >= ROUND_FILL else "other"


def cross_sections(mesh: trimesh.Trimesh, heights=SECTION_HEIGHTS, pixels: int = SECTION_PIXELS) -> list[CrossSection]:
    """The mesh's horizontal sections at ``heights`` (fractions of its height, z up), each rasterised on a square
    grid of ``pixels`` across its larger horizontal extent; of several regions in a section the largest counts."""
    if len(mesh.faces) == 0:
        return [CrossSection(h, 0.0, 0.0, 0.0) for h in heights]
    low, high = mesh.bounds
    step = (high[:2] - low[:2]).max() * 1.02 / pixels  # a pixel's side, a margin of 1 % around the mesh
    axis = (np.arange(pixels) + 0.5 - pixels / 2) * step
    centre = (low[:2] + high[:2]) / 2
    levels = low[2] + np.asarray(heights) * (high[2] - low[2])
    inside = inside_mesh(mesh, centre[0] + axis, centre[1] + axis, levels).numpy()
    return [_measure(height, inside[:, :, k], step) for k, height in enumerate(heights)]


def _measure(height: float, pixels: np.ndarray, step: float) -> CrossSection:
    """The fills of the largest region of a section's pixels (P×P bools, ``step`` world units apart)."""
    regions, count = ndimage.label(pixels)
    if count == 0:
        return CrossSection(height, 0.0, 0.0, 0.0)
    largest = regions == 1 + int(np.argmax(ndimage.sum(pixels, regions, range(1, count + 1))))
    region = ndimage.binary_fill_holes(largest)
    area = float(region.sum()) * step**2
    # The corners of the region's edge pixels: their convex hull is that of the region's squares.
    edge = region & ~ndimage.binary_erosion(region)
    rows, cols = np.nonzero(edge)
    corners = np.concatenate([np.stack([rows + dr, cols + dc], axis=1) for dr in (0, 1) for dc in (0, 1)]) * step
    hull = corners[ConvexHull(corners).vertices]
    _, radius = trimesh.nsphere.minimum_nsphere(hull)
    return CrossSection(height, area, area / _smallest_rectangle_area(hull), area / (math.pi * radius**2))


def _smallest_rectangle_area(hull: np.ndarray) -> float:
    """Area of the smallest rectangle around a convex polygon (H×2, in order), which has a side along one of the
    polygon's edges."""
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.arctan2(edges[:, 1], edges[:, 0])
    cos, sin = np.cos(angles), np.sin(angles)
    u = hull[:, 0][None] * cos[:, None] + hull[:, 1][None] * sin[:, None]  # E×H: along each edge
    v = -hull[:, 0][None] * sin[:, None] + hull[:, 1][None] * cos[:, None]  # and across it
    return float(((u.max(1) - u.min(1)) * (v.max(1) - v.min(1))).min())


def outline_matches(shape: str, sections: list[CrossSection]) -> bool:
    """Whether every section has the outline of ``shape``'s (:data:`SHAPE_OUTLINE`)."""
    return all(section.outline == SHAPE_OUTLINE[shape] for section in sections)
