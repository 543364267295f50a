"""Rendering of a triangle mesh whose albedo comes from a field queried at the surface points.

The refine stage's counterpart of the volume renderer, with the same shading modes and output: the rasterizer
gives each pixel its triangle and barycentrics; the pixel's world point (interpolated) is looked up in the
albedo field; Lambertian shading uses the interpolated, area-weighted vertex normals; the background fills the
pixels no triangle covers; silhouette antialiasing turns coverage into an opacity with gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dreamlift.render.output import CoveredPixels, RenderOutput, Shading
from dreamlift.render.raster import DEFAULT_RASTERIZER, RasterizerConfig, antialias, clip_space, interpolate, rasterize
from dreamlift.render.shading import shade
from dreamlift.scene.cameras import Cameras, generate_rays
from dreamlift.scene.mesh_geometry import vertex_normals

AlbedoFn = Callable[[torch.Tensor], torch.Tensor]
"""World points N×3 → albedo N×3 in [0, 1]."""


def render_mesh(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    albedo: AlbedoFn,
    background: nn.Module,
    cameras: Cameras,
    height: int,
    width: int,
    shading: Shading = "albedo",
    light: tuple[torch.Tensor, torch.Tensor] | None = None,
    config: RasterizerConfig = DEFAULT_RASTERIZER,
) -> RenderOutput:
    """Render a mesh (vertices M×3 world, faces K×3) from B cameras at H×W; ``light`` (directions B×3, ambient B)
    is needed for the shaded modes. Differentiable in the vertices and in whatever ``albedo`` depends on."""
    clip = clip_space(vertices, cameras, height, width)
    fragments = rasterize(clip, faces, height, width, config)
    covered = fragments.face >= 0  # B×H×W
    points = interpolate(vertices, fragments, faces)[covered]
    surface_albedo = albedo(points) if len(points) else points.new_zeros(0, 3)
    colour = torch.zeros(*covered.shape, 3, device=vertices.device, dtype=vertices.dtype)
    normal_image = None
    if shading == "albedo":
        colour[covered] = surface_albedo
    else:
        normals = F.normalize(interpolate(vertex_normals(vertices, faces), fragments, faces), dim=-1)  # 0 where empty
        image_of_pixel = torch.nonzero(covered, as_tuple=True)[0]
        colour[covered] = shade(surface_albedo, normals[covered], shading, light, image_of_pixel)
        normal_image = normals.permute(0, 3, 1, 2)
    _, directions = generate_rays(cameras, height, width)
    mask = fragments.mask
    rgba = torch.cat([mask * colour + (1 - mask) * background(directions), mask], dim=-1)
    if config.antialias:
        rgba = antialias(rgba, fragments, clip, faces, config)
    rgba = rgba.permute(0, 3, 1, 2)
    return RenderOutput(
        rgba[:, :3],
        rgba[:, 3:],
        fragments.depth[:, None],
        normal_image,
        None,
        int(covered.sum()),
        mesh=(vertices, faces),
    )


@torch.no_grad()
def mesh_covered_pixels(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    albedo: AlbedoFn,
    background: nn.Module,
    cameras: Cameras,
    size: int,
    config: RasterizerConfig = DEFAULT_RASTERIZER,
) -> CoveredPixels:
    """The pixels a mesh covers from B cameras at size×size, the surface points they show and those points'
    albedo (:class:`~dreamlift.render.output.CoveredPixels`)."""
    clip = clip_space(vertices, cameras, size, size)
    fragments = rasterize(clip, faces, size, size, config)
    covered = fragments.face >= 0  # B×S×S
    points = interpolate(vertices, fragments, faces)[covered]
    images = render_mesh(vertices, faces, albedo, background, cameras, size, size, config=config).rgb
    return CoveredPixels(covered, points, albedo(points).clamp(0, 1), images)
