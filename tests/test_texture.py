"""Textured export: xatlas UVs, a baked albedo texture with padded seams, GLB and OBJ files that load back."""

import math

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from dreamlift.render.raster import RasterizerConfig, clip_space, interpolate, rasterize
from dreamlift.scene.cameras import Z_UP_TO_Y_UP, orbit_cameras
from dreamlift.text3d.mesh_files import write_meshes
from dreamlift.text3d.texture import dilate, textured_mesh


def albedo(points: torch.Tensor) -> torch.Tensor:
    """A smooth colour field over the scene: each channel follows one coordinate."""
    return (points * 0.8 + 0.5).clamp(0, 1)


def rendered_texture_error(mesh: trimesh.Trimesh) -> float:
    """Mean absolute difference between a render of the mesh's texture (looked up at its UVs) and the albedo
    field at the same surface points, over the pixels the mesh covers, from three views."""
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces)
    uvs = torch.tensor(mesh.visual.uv, dtype=torch.float32)
    image = torch.tensor(np.asarray(mesh.visual.material.baseColorTexture.convert("RGB")), dtype=torch.float32) / 255
    azimuth = torch.tensor([0.3, 2.4, 4.4])
    cameras = orbit_cameras(azimuth, torch.full((3,), 0.3), torch.full((3,), 1.8), torch.full((3,), math.radians(45)))
    fragments = rasterize(clip_space(vertices, cameras, 64, 64), faces, 64, 64, RasterizerConfig(backend="torch"))
    covered = fragments.face >= 0
    uv = interpolate(uvs, fragments, faces)[covered]
    lookup = torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2], dim=-1)  # v = 1 is the image's top row
    texels = F.grid_sample(image.permute(2, 0, 1)[None], lookup[None, None], align_corners=False)[0, :, 0].T
    points = interpolate(vertices, fragments, faces)[covered]
    return float((texels - albedo(points)).abs().mean())


def test_textured_export_loads_with_uvs_and_matches_the_albedo_field(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    mesh = textured_mesh(sphere, albedo, resolution=256, padding=4, device=torch.device("cpu"))
    assert mesh.visual.uv.shape == (len(mesh.vertices), 2) and len(mesh.faces) == len(sphere.faces)
    assert mesh.visual.uv.min() >= 0 and mesh.visual.uv.max() <= 1
    assert rendered_texture_error(mesh) < 0.02

    paths = write_meshes(mesh, tmp_path, ("glb", "obj", "ply"))
    assert sorted(p.name for p in paths) == ["mesh.glb", "mesh.mtl", "mesh.obj", "mesh.ply", "texture.png"]
    assert "Kd 1.0" in (tmp_path / "mesh.mtl").read_text()  # white diffuse: the texture shows unscaled
    for name in ("mesh.glb", "mesh.obj"):
        loaded = trimesh.load(tmp_path / name, force="mesh")
        assert isinstance(loaded.visual, trimesh.visual.TextureVisuals) and loaded.visual.uv is not None
        loaded.apply_transform(np.linalg.inv(Z_UP_TO_Y_UP))  # files are y-up
        if not hasattr(loaded.visual.material, "baseColorTexture"):
            loaded.visual.material = loaded.visual.material.to_pbr()
        assert loaded.visual.material.baseColorTexture.size == (256, 256)
        assert rendered_texture_error(loaded) < 0.025
    ply = trimesh.load(tmp_path / "mesh.ply")
    assert np.asarray(ply.visual.vertex_colors).std() > 10  # the texture sampled into vertex colours


def test_dilation_fills_only_near_empty_texels():
    image = torch.zeros(5, 5, 1)
    filled = torch.zeros(5, 5, dtype=torch.bool)
    image[2, 2], filled[2, 2] = 0.7, True
    grown = dilate(image, filled, passes=1)[..., 0]
    assert torch.allclose(grown[1:4, 1:4], torch.full((3, 3), 0.7))
    assert grown[0].abs().sum() == 0 and grown[:, 0].abs().sum() == 0
