"""Texture baking: UV-unwrap a mesh with xatlas and bake an albedo field into a texture image.

The texture is rasterized in UV space by the project's rasterizer (each texel centre finds its triangle and
barycentrics, hence its 3D point), the albedo field is queried at those points, and the texels no triangle
covers are filled by repeated dilation (each pass gives an empty texel the mean of its filled neighbours), so
bilinear filtering and mip-mapping at UV seams do not pull in the empty colour.

Image rows run top-down with v = 1 at the top row, the convention of glTF, OBJ and trimesh.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from PIL import Image

from dreamlift.errors import UsageError
from dreamlift.render.mesh import AlbedoFn
from dreamlift.render.raster import RasterizerConfig, interpolate, rasterize
from dreamlift.scene.fields import evaluate_in_chunks


def unwrap(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xatlas charts of a mesh: vertex_map V'(original vertex of each new vertex), faces F×3 over the new
    vertices, and uvs V'×2 in [0, 1]. Vertices on chart seams are split, so V' ≥ V."""
    try:
        import xatlas
    except ImportError:
        raise UsageError("textured export needs the xatlas package: pip install xatlas") from None
    vertex_map, faces, uvs = xatlas.parametrize(
        np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.uint32)
    )
    return vertex_map.astype(np.int64), faces.astype(np.int64), uvs.astype(np.float32)


def dilate(image: torch.Tensor, filled: torch.Tensor, passes: int) -> torch.Tensor:
    """Grow an image H×W×C from its ``filled`` texels (H×W bool) by ``passes`` texels; others stay as they are."""
    colour = (image * filled[..., None]).permute(2, 0, 1)[None]
    weight = filled.float()[None, None]
    kernel = torch.ones(1, 1, 3, 3, device=image.device)
    for _ in range(passes):
        total = F.conv2d(colour, kernel.expand(colour.shape[1], 1, 3, 3), padding=1, groups=colour.shape[1])
        count = F.conv2d(weight, kernel, padding=1)
        grow = (weight == 0) & (count > 0)
        colour = torch.where(grow, total / count.clamp(min=1), colour)
        weight = torch.where(grow, torch.ones_like(weight), weight)
    return colour[0].permute(1, 2, 0)


@torch.no_grad()
def bake_albedo(
    vertices: torch.Tensor, faces: torch.Tensor, uvs: torch.Tensor, albedo: AlbedoFn, resolution: int, padding: int
) -> torch.Tensor:
    """Texture resolution×resolution×3 in [0, 1] of ``albedo`` over a mesh (vertices V×3, faces F×3) with
    per-vertex ``uvs`` V×2, seams padded by ``padding`` texels."""
    clip = torch.cat([uvs * 2 - 1, torch.zeros_like(uvs[:, :1]), torch.ones_like(uvs[:, :1])], dim=-1)[None]
    fragments = rasterize(clip, faces, resolution, resolution, RasterizerConfig(backend="torch"))
    points = interpolate(vertices, fragments, faces)[0]  # H×W×3
    filled = fragments.face[0] >= 0
    image = torch.zeros(resolution, resolution, 3, device=vertices.device)
    image[filled] = evaluate_in_chunks(albedo, points[filled]).clamp(0, 1).float()
    return dilate(image, filled, padding)


def textured_mesh(
    mesh: trimesh.Trimesh, albedo: AlbedoFn, resolution: int, padding: int, device: torch.device
) -> trimesh.Trimesh:
    """A copy of ``mesh`` unwrapped with xatlas, carrying a baked albedo texture (a PBR material: base colour
    texture, not metallic, fully rough)."""
    vertex_map, faces, uvs = unwrap(mesh)
    vertices = np.asarray(mesh.vertices)[vertex_map]
    image = bake_albedo(
        torch.as_tensor(vertices, dtype=torch.float32, device=device),
        torch.as_tensor(faces, device=device),
        torch.as_tensor(uvs, device=device),
        albedo,
        resolution,
        padding,
    )
    pixels = Image.fromarray((image.cpu().numpy() * 255).round().astype(np.uint8))
    material = trimesh.visual.material.PBRMaterial(
        name="texture", baseColorTexture=pixels, metallicFactor=0.0, roughnessFactor=1.0
    )
    visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
    return trimesh.Trimesh(vertices, faces, visual=visual, process=False)
