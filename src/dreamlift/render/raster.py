"""A differentiable triangle rasterizer in PyTorch, with nvdiffrast as a drop-in fast path on CUDA.

The steps follow nvdiffrast's split, so either backend serves the same calls:

1. :func:`clip_space` projects world vertices with the cameras (OpenGL clip coordinates, B×V×4).
2. :func:`rasterize` finds, per pixel, the nearest triangle (depth test) and its perspective-correct barycentrics.
   Visibility is decided without gradients; the barycentrics are then recomputed from the winning triangle's
   projected vertices, so they are differentiable with respect to vertex positions (as in nvdiffrast).
3. :func:`interpolate` blends per-vertex attributes with those barycentrics.
4. :func:`antialias` blends colours across silhouette edges by where the edge crosses the segment between
   neighbouring pixel centres, so coverage (the mask) gets gradients with respect to vertex positions.

The PyTorch visibility pass tests each triangle against the pixel centres of its screen bounding box only, in
chunks of at most ``max_candidates`` pairs, keeping the nearest in a running z-buffer: its cost grows with the
summed bounding-box area, not triangles × pixels. Pixel (row i, column j) has its centre at NDC
x = 2(j + ½)/W − 1, y = 1 − 2(i + ½)/H: row 0 is the top, as in :func:`dreamlift.scene.cameras.generate_rays`,
so rasterized and ray-marched images line up. Triangles with a vertex behind the near plane are dropped, not
clipped (cameras orbit outside the scene).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from dreamlift.errors import UsageError
from dreamlift.scene.cameras import Cameras
from dreamlift.scene.mesh_geometry import silhouette_edges

NEAR, FAR = 0.01, 100.0
"""Clip planes of :func:`clip_space` (world units)."""


@dataclass
class RasterizerConfig:
    """Triangle rasterization settings."""

    backend: Literal["auto", "torch", "nvdiffrast"] = "auto"
    """``auto``: nvdiffrast on CUDA when importable, else PyTorch; ``nvdiffrast`` fails when it is unavailable."""
    antialias: bool = True
    """Blend silhouette edges (gives the mask gradients with respect to vertex positions)."""
    max_candidates: int = 1 << 22
    """Most (pixel, triangle) pairs the PyTorch backend tests at once; bounds its memory (≈ 60 bytes each)."""

    def __post_init__(self):
        if self.max_candidates < 1024:
            raise ValueError("rasterizer max_candidates must be >= 1024")


DEFAULT_RASTERIZER = RasterizerConfig()
"""The settings used where none are given (never changed in place)."""


@dataclass
class Fragments:
    """What :func:`rasterize` finds per pixel of B images H×W.

    face: B×H×W triangle index (long), −1 where no triangle covers the pixel.
    bary: B×H×W×3 perspective-correct barycentrics of the triangle's corners (zeros where empty); differentiable.
    depth: B×H×W distance along the camera's viewing axis (world units, 0 where empty); differentiable.
    native: nvdiffrast's own raster output when that backend made these fragments (used by its antialias).
    """

    face: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor
    native: torch.Tensor | None = None

    @property
    def mask(self) -> torch.Tensor:
        """B×H×W×1 float coverage (1 where a triangle is visible)."""
        return (self.face >= 0).float()[..., None]


def projection_matrix(fov_y: torch.Tensor, aspect: float, near: float = NEAR, far: float = FAR) -> torch.Tensor:
    """OpenGL perspective projections B×4×4 for vertical fields of view ``fov_y`` (B, radians), aspect = W / H."""
    focal = 1.0 / torch.tan(fov_y / 2)
    matrix = fov_y.new_zeros(len(fov_y), 4, 4)
    matrix[:, 0, 0] = focal / aspect
    matrix[:, 1, 1] = focal
    matrix[:, 2, 2] = -(far + near) / (far - near)
    matrix[:, 2, 3] = -2 * far * near / (far - near)
    matrix[:, 3, 2] = -1.0
    return matrix


def clip_space(vertices: torch.Tensor, cameras: Cameras, height: int, width: int) -> torch.Tensor:
    """World vertices V×3 (shared) or B×V×3 → clip coordinates B×4 per vertex (B×V×4); w is the view depth."""
    batch = len(cameras)
    if vertices.dim() == 2:
        vertices = vertices.expand(batch, *vertices.shape)
    homogeneous = torch.cat([vertices, torch.ones_like(vertices[..., :1])], dim=-1)
    view_projection = projection_matrix(cameras.fov_y, width / height) @ torch.linalg.inv(cameras.c2w)
    return homogeneous @ view_projection.transpose(1, 2)


def to_pixels(clip: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clip coordinates …×4 → column x, row y (pixel units; centres at integers) and view depth w, each …."""
    w = clip[..., 3]
    x = (clip[..., 0] / w + 1) * (width / 2) - 0.5
    y = (1 - clip[..., 1] / w) * (height / 2) - 0.5
    return x, y, w


def edge_barycentrics(
    corners_x: torch.Tensor, corners_y: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Screen-space (linear) barycentrics …×3 of points (x, y) (each …) in triangles with corners …×3.

    Outside the triangle some are negative; a degenerate triangle gives non-finite values.
    """
    x0, x1, x2 = corners_x.unbind(-1)
    y0, y1, y2 = corners_y.unbind(-1)
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    b0 = ((x1 - x) * (y2 - y) - (y1 - y) * (x2 - x)) / area
    b1 = ((x2 - x) * (y0 - y) - (y2 - y) * (x0 - x)) / area
    return torch.stack([b0, b1, 1 - b0 - b1], dim=-1)


def perspective_correct(linear: torch.Tensor, corner_w: torch.Tensor) -> torch.Tensor:
    """Screen-space barycentrics …×3 → barycentrics of the 3D triangle (corner view depths …×3)."""
    weighted = linear / corner_w
    return weighted / weighted.sum(-1, keepdim=True)


def use_nvdiffrast(config: RasterizerConfig, device: torch.device) -> bool:
    """Whether this config rasterizes with nvdiffrast on ``device`` (imported lazily)."""
    if config.backend == "torch" or (config.backend == "auto" and device.type != "cuda"):
        return False
    try:
        import nvdiffrast.torch  # noqa: F401
    except ImportError:
        if config.backend == "nvdiffrast":
            raise UsageError("rasterizer.backend=nvdiffrast, but nvdiffrast is not installed") from None
        return False
    if device.type != "cuda":
        raise UsageError("rasterizer.backend=nvdiffrast needs CUDA")
    return True


def rasterize(
    clip: torch.Tensor, faces: torch.Tensor, height: int, width: int, config: RasterizerConfig = DEFAULT_RASTERIZER
) -> Fragments:
    """Nearest triangle per pixel of B images (clip coordinates B×V×4, faces F×3 vertex indices)."""
    faces = faces.long()
    if use_nvdiffrast(config, clip.device):
        return _rasterize_nvdiffrast(clip, faces, height, width)
    face = torch.stack([visible_faces(c, faces, height, width, config.max_candidates) for c in clip])
    return fragments_of(face, clip, faces, height, width)


@torch.no_grad()
def visible_faces(
    clip: torch.Tensor, faces: torch.Tensor, height: int, width: int, max_candidates: int
) -> torch.Tensor:
    """Depth test of one image (clip V×4, faces F×3): the nearest covering triangle per pixel, H×W (−1: none).

    A pixel centre on an edge shared by two triangles goes to the nearer one, and on a tie to the higher index.
    """
    x, y, w = to_pixels(clip, height, width)
    cx, cy, cw = x[faces], y[faces], w[faces]  # F×3 each
    x0 = cx.amin(-1).ceil().clamp(0, width - 1)
    x1 = cx.amax(-1).floor().clamp(0, width - 1)
    y0 = cy.amin(-1).ceil().clamp(0, height - 1)
    y1 = cy.amax(-1).floor().clamp(0, height - 1)
    box_w, box_h = (x1 - x0 + 1).long(), (y1 - y0 + 1).long()
    on_screen = (cw > NEAR).all(-1) & (cx.amax(-1) >= 0) & (cx.amin(-1) <= width - 1)
    on_screen &= (cy.amax(-1) >= 0) & (cy.amin(-1) <= height - 1) & (box_w > 0) & (box_h > 0)
    candidates = torch.where(on_screen, box_w * box_h, torch.zeros_like(box_w))
    depth_buffer = torch.full((height * width,), math.inf, device=clip.device)
    face_buffer = torch.full((height * width,), -1, dtype=torch.long, device=clip.device)
    for ids in chunks_by_total(candidates, max_candidates):
        counts = candidates[ids]
        owner = ids.repeat_interleave(counts)  # the triangle of each candidate pixel
        first = torch.cumsum(counts, 0) - counts
        local = torch.arange(len(owner), device=clip.device) - first.repeat_interleave(counts)
        px = x0[owner] + local % box_w[owner]
        py = y0[owner] + torch.div(local, box_w[owner], rounding_mode="floor")
        bary = edge_barycentrics(cx[owner], cy[owner], px, py)
        inside = (bary >= 0).all(-1)
        owner, bary, pixel = owner[inside], bary[inside], (py * width + px).long()[inside]
        depth = 1 / (bary / cw[owner]).sum(-1)
        nearest = torch.full_like(depth_buffer, math.inf).scatter_reduce(0, pixel, depth, "amin")
        wins = depth == nearest[pixel]
        winner = torch.full_like(face_buffer, -1).scatter_reduce(0, pixel[wins], owner[wins], "amax")
        closer = nearest < depth_buffer
        depth_buffer = torch.where(closer, nearest, depth_buffer)
        face_buffer = torch.where(closer, winner, face_buffer)
    return face_buffer.reshape(height, width)


def chunks_by_total(counts: torch.Tensor, limit: int) -> list[torch.Tensor]:
    """Indices of the non-zero ``counts`` in consecutive groups whose counts sum to at most ``limit`` (a single
    larger count forms its own group)."""
    ids = torch.nonzero(counts > 0).flatten()
    if len(ids) == 0:
        return []
    total = torch.cumsum(counts[ids], 0)
    groups, start = [], 0
    while start < len(ids):
        offset = total[start - 1] if start else 0
        end = int(torch.searchsorted(total, offset + limit, right=True))
        end = max(end, start + 1)
        groups.append(ids[start:end])
        start = end
    return groups


def fragments_of(face: torch.Tensor, clip: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> Fragments:
    """Differentiable barycentrics and depth of the visible triangles (face B×H×W from the depth test)."""
    covered = face >= 0
    batch_index = torch.arange(len(clip), device=clip.device)[:, None, None].expand_as(face)[covered]
    corners = faces[face[covered]]  # N×3
    x, y, w = to_pixels(clip, height, width)
    rows, cols = torch.nonzero(covered, as_tuple=True)[1:]
    linear = edge_barycentrics(
        x[batch_index[:, None], corners], y[batch_index[:, None], corners], cols.to(x), rows.to(x)
    )
    corner_w = w[batch_index[:, None], corners]
    bary = perspective_correct(linear, corner_w)
    dense_bary = clip.new_zeros(*face.shape, 3)
    dense_bary[covered] = bary
    dense_depth = clip.new_zeros(face.shape)
    dense_depth[covered] = (bary * corner_w).sum(-1)
    return Fragments(face, dense_bary, dense_depth)


def interpolate(attributes: torch.Tensor, fragments: Fragments, faces: torch.Tensor) -> torch.Tensor:
    """Per-vertex attributes V×C (shared) or B×V×C → per-pixel values B×H×W×C (zeros where nothing is drawn)."""
    face = fragments.face
    if len(faces) == 0:
        return attributes.new_zeros(*face.shape, attributes.shape[-1])
    if attributes.dim() == 2:
        attributes = attributes.expand(face.shape[0], *attributes.shape)
    corners = faces.long()[face.clamp(min=0)]  # B×H×W×3
    batch_index = torch.arange(face.shape[0], device=face.device)[:, None, None, None]
    values = (attributes[batch_index, corners] * fragments.bary[..., None]).sum(-2)
    return values * (face >= 0)[..., None]


def antialias(
    image: torch.Tensor,
    fragments: Fragments,
    clip: torch.Tensor,
    faces: torch.Tensor,
    config: RasterizerConfig = DEFAULT_RASTERIZER,
) -> torch.Tensor:
    """Blend an image B×H×W×C (background already in it) across silhouette edges; differentiable in ``clip``.

    For each pair of horizontally or vertically neighbouring pixels drawn from different triangles (or one from
    none), the nearer triangle's edge between them is found from its barycentrics extrapolated to the other pixel
    centre. When that edge is a silhouette (a mesh boundary, or a fold between a front- and a back-facing
    triangle), the pixels share colour in proportion to where the edge crosses: at a fraction α of the way from
    the nearer pixel, the far pixel takes max(0, α − ½) of the nearer colour, the nearer pixel max(0, ½ − α)
    of the far one.
    """
    if fragments.native is not None:
        import nvdiffrast.torch as dr

        flipped = dr.antialias(image.flip(1).contiguous(), fragments.native, clip.contiguous(), faces.int())
        return flipped.flip(1)
    faces = faces.long()
    height, width = image.shape[1:3]
    x, y, w = to_pixels(clip, height, width)
    silhouette = silhouette_edges(x, y, faces)  # B×F×3: edge opposite corner k is a silhouette
    result = image
    for axis in (1, 2):  # vertical neighbours (rows), then horizontal (columns)
        first = fragments.face.narrow(axis, 0, fragments.face.shape[axis] - 1)
        second = fragments.face.narrow(axis, 1, fragments.face.shape[axis] - 1)
        depth_first = fragments.depth.narrow(axis, 0, first.shape[axis])
        depth_second = fragments.depth.narrow(axis, 1, first.shape[axis])
        differs = first != second
        first_in_front = (second < 0) | ((first >= 0) & (depth_first <= depth_second))
        b, i, j = torch.nonzero(differs, as_tuple=True)
        if len(b) == 0:
            continue
        near_first = first_in_front[b, i, j]
        step = (1, 0) if axis == 1 else (0, 1)
        i2, j2 = i + step[0], j + step[1]
        near_i, near_j = torch.where(near_first, i, i2), torch.where(near_first, j, j2)
        far_i, far_j = torch.where(near_first, i2, i), torch.where(near_first, j2, j)
        tri = fragments.face[b, near_i, near_j]
        corners = faces[tri]
        cx, cy = x[b[:, None], corners], y[b[:, None], corners]
        at_near = edge_barycentrics(cx, cy, near_j.to(x), near_i.to(x))
        at_far = edge_barycentrics(cx, cy, far_j.to(x), far_i.to(x))
        leaving = at_far < 0
        crossing = torch.where(
            leaving, at_near / (at_near - at_far).clamp(min=1e-12), torch.full_like(at_near, math.inf)
        )
        alpha, edge = crossing.min(-1)
        keep = torch.isfinite(alpha) & silhouette[b, tri, edge]
        if not keep.any():
            continue
        b, alpha = b[keep], alpha[keep].clamp(0, 1)
        near_i, near_j, far_i, far_j = near_i[keep], near_j[keep], far_i[keep], far_j[keep]
        near_colour, far_colour = image[b, near_i, near_j], image[b, far_i, far_j]
        delta = torch.zeros_like(image)
        to_far = (alpha - 0.5).clamp(min=0)[:, None] * (near_colour - far_colour)
        to_near = (0.5 - alpha).clamp(min=0)[:, None] * (far_colour - near_colour)
        delta = delta.index_put((b, far_i, far_j), to_far, accumulate=True)
        delta = delta.index_put((b, near_i, near_j), to_near, accumulate=True)
        result = result + delta
    return result


def _rasterize_nvdiffrast(clip: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> Fragments:
    """nvdiffrast's rasterizer behind the same interface (its image rows run bottom-up; ours top-down)."""
    import nvdiffrast.torch as dr

    native, _ = dr.rasterize(dr.RasterizeCudaContext(clip.device), clip.contiguous(), faces.int(), (height, width))
    raster = native.flip(1)
    face = raster[..., 3].long() - 1
    u, v = raster[..., 0], raster[..., 1]
    bary = torch.stack([u, v, 1 - u - v], dim=-1) * (face >= 0)[..., None]
    corner_w = clip[..., 3][torch.arange(len(clip), device=clip.device)[:, None, None, None], faces[face.clamp(min=0)]]
    depth = (bary * corner_w).sum(-1)
    return Fragments(face, bary, depth, native)
