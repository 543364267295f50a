"""Lambertian shading and the random light that the renderers and the embedded prior's dataset use."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dreamlift.render.output import Shading


def sample_lights(
    camera_positions: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random lights for B cameras (positions B×3): unit directions towards the light B×3 and ambient levels B.

    The light comes from around the camera and somewhat from above; ambient lies in [0.3, 0.5].
    """
    batch = camera_positions.shape[0]
    jitter = 0.8 * torch.randn(batch, 3, generator=generator).to(camera_positions)
    above = camera_positions.new_tensor([0.0, 0.0, 0.6])
    direction = F.normalize(F.normalize(camera_positions, dim=-1) + jitter + above, dim=-1)
    ambient = (0.3 + 0.2 * torch.rand(batch, generator=generator)).to(camera_positions)
    return direction, ambient


def fixed_light(batch: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """One light fixed in the world (front-left, above) with ambient 0.45, for validation and turntables."""
    direction = F.normalize(torch.tensor([1.0, 0.5, 1.0], device=device), dim=0).expand(batch, 3)
    return direction, torch.full((batch,), 0.45, device=device)


def lambertian(albedo: torch.Tensor, normal: torch.Tensor, light: torch.Tensor, ambient: torch.Tensor) -> torch.Tensor:
    """albedo·(a + (1 − a)·max(n·l, 0)); all inputs broadcast over a leading shape, the last dimension is 3
    (ambient has no last dimension)."""
    diffuse = (normal * light).sum(-1).clamp(min=0)
    return albedo * (ambient + (1 - ambient) * diffuse)[..., None]


def shade(
    albedo: torch.Tensor,
    normal: torch.Tensor,
    shading: Shading,
    light: tuple[torch.Tensor, torch.Tensor] | None,
    image: torch.Tensor,
) -> torch.Tensor:
    """Colours N×3 of surface points (albedo and unit normals N×3) in a shaded mode: the albedo ("lambertian") or
    white ("textureless") under the light (directions B×3, ambient B) of each point's image (``image``: N indices)."""
    if light is None:
        raise ValueError(f"shading '{shading}' needs a light")
    directions, ambient = light
    base = torch.ones_like(albedo) if shading == "textureless" else albedo
    return lambertian(base, normal, directions[image], ambient[image])
