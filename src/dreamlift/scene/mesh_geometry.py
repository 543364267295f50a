"""Triangle-mesh quantities: normals, edge adjacency, and the smoothness regularisers of the refine stage.

Meshes are vertices V×3 (float, world units) and faces F×3 (long vertex indices, counter-clockwise seen from
outside, so face normals point out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def face_normals(vertices: torch.Tensor, faces: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Normals F×3 of the faces; unnormalised they are twice the face areas in length."""
    a, b, c = vertices[faces].unbind(1)
    normals = torch.cross(b - a, c - a, dim=-1)
    return F.normalize(normals, dim=-1) if normalize else normals


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals V×3."""
    weighted = face_normals(vertices, faces, normalize=False)
    summed = torch.zeros_like(vertices).index_add(0, faces.reshape(-1), weighted.repeat_interleave(3, dim=0))
    return F.normalize(summed, dim=-1)


def edge_keys(faces: torch.Tensor) -> torch.Tensor:
    """One integer per face edge, equal for the two faces sharing it: F×3, entry k for the edge opposite corner k."""
    n = int(faces.max()) + 1 if len(faces) else 0
    a = faces[:, [1, 2, 0]]
    b = faces[:, [2, 0, 1]]
    return torch.minimum(a, b) * n + torch.maximum(a, b)


def edge_neighbours(faces: torch.Tensor) -> torch.Tensor:
    """The face across each edge: F×3, entry k for the edge opposite corner k; −1 where the edge bounds the mesh
    (or is shared by more than two faces)."""
    keys = edge_keys(faces).reshape(-1)
    order = torch.argsort(keys)
    sorted_keys = keys[order]
    neighbour = torch.full_like(keys, -1)
    if len(keys) < 2:
        return neighbour.reshape(-1, 3)
    same_next = sorted_keys[1:] == sorted_keys[:-1]
    # A pair is two equal keys whose outer neighbours differ (an edge of three or more faces has no pair).
    before = torch.cat([same_next.new_zeros(1), same_next[:-1]])
    after = torch.cat([same_next[1:], same_next.new_zeros(1)])
    pair = same_next & ~before & ~after
    first, second = order[:-1][pair], order[1:][pair]
    neighbour[first] = torch.div(second, 3, rounding_mode="floor")
    neighbour[second] = torch.div(first, 3, rounding_mode="floor")
    return neighbour.reshape(-1, 3)


def unique_edges(faces: torch.Tensor) -> torch.Tensor:
    """Each undirected edge once: E×2 vertex indices."""
    pairs = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return torch.unique(torch.sort(pairs, dim=1).values, dim=0)


def normal_consistency(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean 1 − cos of the angle between the normals of faces sharing an edge (0 for a flat sheet)."""
    if len(faces) == 0:
        return vertices.new_zeros(())
    neighbour = edge_neighbours(faces)
    face, _ = torch.nonzero(neighbour >= 0, as_tuple=True)
    if len(face) == 0:
        return vertices.new_zeros(())
    normals = face_normals(vertices, faces)
    other = neighbour[neighbour >= 0]
    return (1 - (normals[face] * normals[other]).sum(-1)).mean()


def laplacian_smoothing(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean squared length of the uniform Laplacian, v − mean of v's neighbours (world units²)."""
    if len(faces) == 0:
        return vertices.new_zeros(())
    edges = unique_edges(faces)
    both = torch.cat([edges, edges.flip(1)])
    total = torch.zeros_like(vertices).index_add(0, both[:, 0], vertices[both[:, 1]])
    degree = torch.zeros(len(vertices), device=vertices.device).index_add(
        0, both[:, 0], torch.ones(len(both), device=vertices.device)
    )
    used = degree > 0
    offsets = vertices[used] - total[used] / degree[used, None]
    return (offsets**2).sum(-1).mean() if used.any() else vertices.new_zeros(())


def silhouette_edges(x: torch.Tensor, y: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Which triangle edges are silhouettes in each image (pixel coordinates x, y B×V): B×F×3, entry k for the
    edge opposite corner k. An edge is one when it bounds the mesh or its two triangles face opposite ways."""
    cx, cy = x[:, faces], y[:, faces]  # B×F×3
    area = (cx[..., 1] - cx[..., 0]) * (cy[..., 2] - cy[..., 0]) - (cy[..., 1] - cy[..., 0]) * (cx[..., 2] - cx[..., 0])
    facing = area > 0  # B×F
    neighbour = edge_neighbours(faces)  # F×3, −1 on the boundary
    other = facing[:, neighbour.clamp(min=0)]  # B×F×3
    return (neighbour < 0)[None] | (other != facing[..., None])
