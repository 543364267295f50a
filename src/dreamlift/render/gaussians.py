"""Rendering of 3D Gaussians with a background, in the shading modes of the other renderers.

The Gaussian scene's counterpart of the volume and mesh renderers, with the same output: splatting
(:mod:`dreamlift.render.splatting`) gives each pixel its composited albedo, opacity and depth; the background
fills what the Gaussians leave uncovered. Gaussians carry no surface normal, so the shaded modes take it from
the rendered depth: each pixel's expected depth (depth over opacity) is lifted to a world point along its ray,
and the normal is the cross product of the differences between its neighbours' points, turned to face the
camera. Shading gradients thus reach the geometry through the depth. The same lifting gives the export the
world points and colours the renders show (:func:`covered_pixels`), from which it colours a Gaussian mesh.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dreamlift.render.output import CoveredPixels, RenderOutput, Shading
from dreamlift.render.shading import lambertian
from dreamlift.render.splatting import Splats, SplattingConfig, splat
from dreamlift.scene.cameras import Cameras, generate_rays
from dreamlift.scene.gaussians import Gaussians


def depth_normals(points: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Unit world normals B×H×W×3 of a surface given by one world point per pixel (B×H×W×3), from central
    differences (one-sided at the border), facing against the view ``directions`` (B×H×W×3)."""
    padded = F.pad(points.permute(0, 3, 1, 2), (1, 1, 1, 1), mode="replicate").permute(0, 2, 3, 1)
    across = padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]  # along the columns
    down = padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]  # along the rows
    normals = F.normalize(torch.cross(down, across, dim=-1), dim=-1)
    facing_away = (normals * directions).sum(-1, keepdim=True) > 0
    return torch.where(facing_away, -normals, normals)


def splat_gaussians(gaussians: Gaussians, cameras: Cameras, height: int, width: int, config: SplattingConfig) -> Splats:
    """:func:`~dreamlift.render.splatting.splat` of every Gaussian, as it is now, from B cameras at H×W."""
    return splat(
        gaussians.means, gaussians.scales, gaussians.quaternions, gaussians.opacities, gaussians.colours,
        cameras, height, width, config,
    )  # fmt: skip


def lift_pixels(
    cameras: Cameras, origins: torch.Tensor, directions: torch.Tensor, depth: torch.Tensor, opacity: torch.Tensor
) -> torch.Tensor:
    """The world point B×H×W×3 each pixel shows: its expected view depth (``depth``, B×H×W×1, the composited
    Σ wᵢ zᵢ, over its ``opacity`` B×H×W×1) taken along its ray (``origins``, ``directions``: B×H×W×3)."""
    forward = -cameras.c2w[:, None, None, :3, 2]  # B×1×1×3, the view axis
    view_depth = depth / opacity.clamp(min=1e-6)
    return origins + directions * view_depth / (directions * forward).sum(-1, keepdim=True)


@torch.no_grad()
def covered_pixels(
    gaussians: Gaussians,
    background: nn.Module,
    cameras: Cameras,
    size: int,
    config: SplattingConfig,
    min_opacity: float = 0.5,
) -> CoveredPixels:
    """The pixels the Gaussians cover at least ``min_opacity`` from B cameras at size×size, and what they show
    there (:class:`CoveredPixels`)."""
    splats = splat_gaussians(gaussians, cameras, size, size, config)
    opacity = splats.alpha[..., None]  # B×H×W×1
    origins, directions = generate_rays(cameras, size, size)
    points = lift_pixels(cameras, origins, directions, splats.depth[..., None], opacity)
    mask = splats.alpha >= min_opacity
    albedo = (splats.rgb / opacity.clamp(min=1e-6))[mask].clamp(0, 1)
    images = on_background(splats.rgb, opacity, background, directions)
    return CoveredPixels(mask, points[mask], albedo, images.permute(0, 3, 1, 2))


def on_background(
    colour: torch.Tensor, opacity: torch.Tensor, background: nn.Module, directions: torch.Tensor
) -> torch.Tensor:
    """Composited colour B×H×W×3 (premultiplied by its ``opacity`` B×H×W×1) over the ``background`` its rays'
    ``directions`` (B×H×W×3) see."""
    return colour + (1 - opacity) * background(directions)


def render_gaussians(
    gaussians: Gaussians,
    background: nn.Module,
    cameras: Cameras,
    height: int,
    width: int,
    shading: Shading = "albedo",
    light: tuple[torch.Tensor, torch.Tensor] | None = None,
    config: SplattingConfig | None = None,
) -> RenderOutput:
    """Render Gaussians from B cameras at H×W; ``light`` (directions B×3, ambient B) is needed for the shaded
    modes. Differentiable in every Gaussian parameter; the output's ``screen_means`` carry the view-space
    gradient for densification after a backward pass."""
    config = config or SplattingConfig()
    splats = splat_gaussians(gaussians, cameras, height, width, config)
    opacity = splats.alpha[..., None]  # B×H×W×1
    colour = splats.rgb  # premultiplied by the opacity
    origins, directions = generate_rays(cameras, height, width)
    normal_image = None
    if shading != "albedo":
        if light is None:
            raise ValueError(f"shading '{shading}' needs a light")
        points = lift_pixels(cameras, origins, directions, splats.depth[..., None], opacity)
        normals = depth_normals(points, directions)
        directions_to_light, ambient = light
        base = opacity.expand_as(colour) if shading == "textureless" else colour
        colour = lambertian(base, normals, directions_to_light[:, None, None], ambient[:, None, None])
        normal_image = (normals * opacity).permute(0, 3, 1, 2)
    rgb = on_background(colour, opacity, background, directions)
    return RenderOutput(
        rgb.permute(0, 3, 1, 2),
        opacity.permute(0, 3, 1, 2),
        splats.depth[:, None],
        normal_image,
        None,
        splats.fragments,
        optical_depth=splats.optical_depth[:, None],
        screen_means=splats.means2d,
        radii=splats.radii,
    )
