"""The differentiable rasterizer: exact coverage, depth and barycentrics; gradients; the nvdiffrast path."""

import math

import pytest
import torch
import trimesh

from dreamlift.render.raster import (
    RasterizerConfig,
    antialias,
    clip_space,
    interpolate,
    rasterize,
    visible_faces,
)
from dreamlift.scene.cameras import orbit_cameras

TORCH = RasterizerConfig(backend="torch")


def ndc_triangle(corners, w=(1.0, 1.0, 1.0)):
    """Clip coordinates 1×3×4 of a triangle given by NDC (x, y) corners and per-corner w."""
    return torch.tensor([[[x * wi, y * wi, 0.0, wi] for (x, y), wi in zip(corners, w)]])


def test_known_triangle_coverage_depth_and_barycentrics():
    # Corners at pixel positions (column, row) (1.5, 5.5), (5.5, 5.5), (3.5, 1.5) of an 8×8 image.
    clip = ndc_triangle([(-0.5, -0.5), (0.5, -0.5), (0.0, 0.5)])
    fragments = rasterize(clip, torch.tensor([[0, 1, 2]]), 8, 8, TORCH)
    covered = (fragments.face[0] == 0).nonzero().tolist()
    expected = [[3, 3], [3, 4], [4, 3], [4, 4], [5, 2], [5, 3], [5, 4], [5, 5]]
    assert covered == expected
    assert (fragments.face[0] >= 0).sum() == len(expected)
    assert torch.equal(fragments.depth[0][fragments.face[0] == 0], torch.ones(len(expected)))
    # Pixel (row 4, column 3): screen barycentrics solved by hand; with equal w they are also the 3D ones.
    assert torch.allclose(fragments.bary[0, 4, 3], torch.tensor([0.4375, 0.1875, 0.375]))
    assert torch.allclose(fragments.bary[0].sum(-1)[fragments.face[0] == 0], torch.ones(len(expected)))
    assert torch.equal(fragments.bary[0, 0, 0], torch.zeros(3))


def test_perspective_correct_barycentrics_and_depth():
    # The same screen triangle with corner depths 1, 2, 4: barycentrics reweighted by 1/w, depth interpolated.
    clip = ndc_triangle([(-0.5, -0.5), (0.5, -0.5), (0.0, 0.5)], w=(1.0, 2.0, 4.0))
    fragments = rasterize(clip, torch.tensor([[0, 1, 2]]), 8, 8, TORCH)
    linear = torch.tensor([0.4375, 0.1875, 0.375])
    weighted = linear / torch.tensor([1.0, 2.0, 4.0])
    assert torch.allclose(fragments.bary[0, 4, 3], weighted / weighted.sum())
    assert torch.allclose(fragments.depth[0, 4, 3], 1 / weighted.sum())


def test_nearest_triangle_wins_and_chunking_changes_nothing():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    vertices, faces = torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces)
    cameras = orbit_cameras(*(torch.tensor([v]) for v in (0.3, 0.2, 2.0, math.radians(45))))
    clip = clip_space(vertices, cameras, 48, 48)
    whole = visible_faces(clip[0], faces, 48, 48, max_candidates=1 << 22)
    chunked = visible_faces(clip[0], faces, 48, 48, max_candidates=1024)
    assert torch.equal(whole, chunked)
    fragments = rasterize(clip, faces, 48, 48, TORCH)
    # Every visible face points towards the camera (the far side of the sphere is hidden).
    normals = torch.tensor(mesh.face_normals, dtype=torch.float32)
    seen = fragments.face[0][fragments.face[0] >= 0].unique()
    to_camera = cameras.positions[0] - vertices[faces[seen]].mean(1)
    assert ((normals[seen] * to_camera).sum(-1) > 0).all()
    # Depth of the nearest point on the sphere: distance 2 minus radius (up to the tessellation).
    assert abs(fragments.depth[0][fragments.face[0] >= 0].min().item() - 1.5) < 0.01


def test_interpolate_gives_world_points_on_the_surface():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    vertices, faces = torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces)
    cameras = orbit_cameras(*(torch.tensor([v]) for v in (1.0, 0.4, 1.8, math.radians(50))))
    fragments = rasterize(clip_space(vertices, cameras, 32, 32), faces, 32, 32, TORCH)
    points = interpolate(vertices, fragments, faces)[fragments.face >= 0]
    assert torch.allclose(points.norm(dim=-1), torch.full((len(points),), 0.5), atol=0.01)


def square(offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip coordinates of a square (two triangles) shifted right by ``offset`` in NDC, and its faces."""
    corners = torch.tensor([[-0.4, -0.4], [0.4, -0.4], [0.4, 0.4], [-0.4, 0.4]]) + torch.tensor([offset, 0.0])
    clip = torch.cat([corners, torch.zeros(4, 1), torch.ones(4, 1)], dim=-1)[None]
    return clip, torch.tensor([[0, 1, 2], [0, 2, 3]])


def coverage(clip: torch.Tensor, faces: torch.Tensor, size: int = 16) -> torch.Tensor:
    """Antialiased mask 1×H×W×1 of a mesh over an empty background."""
    fragments = rasterize(clip, faces, size, size, TORCH)
    return antialias(fragments.mask, fragments, clip, faces, TORCH)


def test_antialiased_mask_moves_with_the_edge_and_inner_edges_stay_hard():
    clip, faces = square(0.0)
    mask = coverage(clip, faces)
    # Edges at NDC ±0.4 → pixel x = 4.3 and 10.7: the first pixel outside takes 0.2, the last inside keeps 1.
    row = mask[0, 8, :, 0]
    assert torch.allclose(row[[3, 4, 5, 10, 11, 12]], torch.tensor([0.0, 0.2, 1.0, 1.0, 0.2, 0.0]))
    assert torch.allclose(mask[0, :, 8, 0], row)  # the same vertically
    # The diagonal shared by the two triangles is no silhouette: the inside stays exactly 1.
    assert torch.equal(mask[0, 5:11, 5:11, 0], torch.ones(6, 6))
    # Total coverage ≈ the square's area, 6.4² pixels (the 1-D blends leave the corner pixels out).
    assert abs(mask.sum().item() - 6.4**2) < 1.0
    # 0.4 pixels to the right (edges at 4.7 and 11.1): the pixels just inside the edges are partly uncovered.
    shifted = coverage(*square(0.05))[0, 8, :, 0]
    assert torch.allclose(shifted[[4, 5, 11, 12]], torch.tensor([0.0, 0.8, 0.6, 0.0]))


def test_silhouette_gradient_matches_finite_differences():
    faces = torch.tensor([[0, 1, 2]])
    corners = [(-0.45, -0.4), (0.5, -0.3), (0.05, 0.55)]
    target = coverage(ndc_triangle([(x + 0.1, y + 0.05) for x, y in corners]), faces).detach()
    clip = ndc_triangle(corners)

    def loss(c):
        return ((coverage(c, faces) - target) ** 2).sum()

    clip = clip.clone().requires_grad_(True)
    loss(clip).backward()
    analytic = clip.grad[0, :, :2].clone()
    numeric = torch.zeros_like(analytic)
    eps = 0.001  # 0.008 pixels: small enough that no edge crosses a pixel centre
    for v in range(3):
        for axis in range(2):
            step = torch.zeros_like(clip)
            step[0, v, axis] = eps
            numeric[v, axis] = (loss(clip.detach() + step) - loss(clip.detach() - step)) / (2 * eps)
    assert torch.allclose(analytic, numeric, rtol=0.02, atol=0.02 * numeric.abs().max())
    # The target lies up and to the right: the summed gradient moves the triangle that way.
    assert (analytic.sum(0) < 0).all()


def test_square_moves_towards_its_target():
    target = coverage(*square(0.15)).detach()
    clip, faces = square(0.0)
    clip.requires_grad_(True)
    ((coverage(clip, faces) - target) ** 2).sum().backward()
    assert (clip.grad[0, :, 0] < 0).all()  # every corner is pushed right
    assert abs(clip.grad[0, :, 1].sum()) < 0.1 * abs(clip.grad[0, :, 0].sum())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the nvdiffrast path needs CUDA")
def test_nvdiffrast_matches_the_torch_rasterizer():
    pytest.importorskip("nvdiffrast.torch")
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32, device="cuda")
    faces = torch.tensor(mesh.faces, device="cuda")
    cameras = orbit_cameras(*(torch.tensor([v]) for v in (0.3, 0.2, 2.0, math.radians(45)))).to("cuda")
    clip = clip_space(vertices, cameras, 64, 64)
    ours = rasterize(clip, faces, 64, 64, TORCH)
    theirs = rasterize(clip, faces, 64, 64, RasterizerConfig(backend="nvdiffrast"))
    agree = ours.face == theirs.face
    assert agree.float().mean() > 0.99
    both = agree & (ours.face >= 0)
    assert torch.allclose(ours.bary[both], theirs.bary[both], atol=1e-3)
    assert torch.allclose(ours.depth[both], theirs.depth[both], atol=1e-3)
