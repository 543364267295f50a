"""Orbit cameras around the origin: sampling, fixed turntable paths, and ray generation.

Conventions (see docs/design.md): world z is up; a camera at azimuth 0 sits on the +x axis and sees the object's
front; azimuth grows counter-clockwise seen from above; elevation is the angle above the xy plane. Configs give
angles in degrees, code works in radians. ``c2w`` is the OpenGL-style camera-to-world matrix: the camera looks
down its own -z axis, +x right, +y up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

Z_UP_TO_Y_UP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
"""Rotation taking dreamlift's z-up world to the y-up axes of mesh files (glTF's convention): (x, y, z) → (x, z, −y)."""


@dataclass
class CameraConfig:
    """Ranges from which training cameras are drawn uniformly."""

    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    """Azimuth in degrees; 0 is the front (+x)."""
    elevation_range: tuple[float, float] = (-10.0, 45.0)
    """Elevation above the horizon in degrees."""
    overhead_fraction: float = 0.0
    """Share of cameras whose elevation is drawn from ``overhead_range`` instead: views from above, which show what
    side views cannot (a torus's hole) and which the prompt calls "overhead view" above 60° (priors/views.py)."""
    overhead_range: tuple[float, float] = (60.5, 85.0)
    """Elevation in degrees of the overhead share."""
    distance_range: tuple[float, float] = (1.6, 2.0)
    """Distance from the look-at point, in world units (the scene lives in [-1, 1]^3)."""
    fov_range: tuple[float, float] = (40.0, 55.0)
    """Vertical field of view in degrees."""
    center_jitter: float = 0.05
    """Standard deviation of a random offset of the look-at point (world units); 0 disables it."""
    up_jitter: float = 0.02
    """Standard deviation of a random tilt of the up vector; 0 disables it."""

    def __post_init__(self):
        for name in ("azimuth_range", "elevation_range", "overhead_range", "distance_range", "fov_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} must be [low, high] with low <= high, got {[low, high]}")
        if self.distance_range[0] <= 0:
            raise ValueError("distance_range must be positive")
        if not 0 < self.fov_range[0] <= self.fov_range[1] < 180:
            raise ValueError("fov_range must lie in (0, 180) degrees")
        if not 0 <= self.overhead_fraction <= 1:
            raise ValueError(f"overhead_fraction must lie in [0, 1], got {self.overhead_fraction}")
        if self.center_jitter < 0 or self.up_jitter < 0:
            raise ValueError("center_jitter and up_jitter must be >= 0")


@dataclass
class Cameras:
    """A batch of B pinhole cameras.

    c2w: B×4×4 camera-to-world matrices. fov_y: B vertical field of view (radians).
    azimuth, elevation: B (radians), distance: B (world units) — the orbit parameters they were made from.
    """

    c2w: torch.Tensor
    fov_y: torch.Tensor
    azimuth: torch.Tensor
    elevation: torch.Tensor
    distance: torch.Tensor

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, index: int | slice | torch.Tensor) -> Cameras:
        """A sub-batch (by slice or index tensor); an integer index keeps the batch dimension (a batch of one)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(
            self.c2w[index], self.fov_y[index], self.azimuth[index], self.elevation[index], self.distance[index]
        )

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(*(t.to(device) for t in (self.c2w, self.fov_y, self.azimuth, self.elevation, self.distance)))

    @staticmethod
    def cat(batches: list[Cameras]) -> Cameras:
        """One batch of the cameras of ``batches``, in order."""
        fields = zip(*((b.c2w, b.fov_y, b.azimuth, b.elevation, b.distance) for b in batches))
        return Cameras(*(torch.cat(list(tensors)) for tensors in fields))

    @property
    def positions(self) -> torch.Tensor:
        """B×3 camera centres in world space."""
        return self.c2w[:, :3, 3]


def look_at_c2w(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Camera-to-world matrices (B×4×4) for cameras at ``eye`` (B×3) looking at ``target`` (B×3), given ``up`` (B×3)."""
    forward = F.normalize(target - eye, dim=-1)
    right = F.normalize(torch.cross(forward, up, dim=-1), dim=-1)
    true_up = torch.cross(right, forward, dim=-1)
    c2w = torch.eye(4, dtype=eye.dtype, device=eye.device).repeat(eye.shape[0], 1, 1)
    c2w[:, :3, 0] = right
    c2w[:, :3, 1] = true_up
    c2w[:, :3, 2] = -forward
    c2w[:, :3, 3] = eye
    return c2w


def orbit_cameras(
    azimuth: torch.Tensor,
    elevation: torch.Tensor,
    distance: torch.Tensor,
    fov_y: torch.Tensor,
    target: torch.Tensor | None = None,
    up: torch.Tensor | None = None,
) -> Cameras:
    """Cameras on a sphere around ``target`` (default origin). Angles in radians, all inputs of shape B."""
    eye = torch.stack(
        [
            distance * torch.cos(elevation) * torch.cos(azimuth),
            distance * torch.cos(elevation) * torch.sin(azimuth),
            distance * torch.sin(elevation),
        ],
        dim=-1,
    )
    if target is None:
        target = torch.zeros_like(eye)
    if up is None:
        up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
    eye = eye + target
    return Cameras(look_at_c2w(eye, target, up), fov_y, azimuth, elevation, distance)


def sample_cameras(config: CameraConfig, batch_size: int, generator: torch.Generator | None = None) -> Cameras:
    """Draw ``batch_size`` training cameras uniformly from the config's ranges (on the CPU); with an
    ``overhead_fraction``, that share's elevations come from ``overhead_range``."""

    def uniform(low_high: tuple[float, float]) -> torch.Tensor:
        low, high = low_high
        return low + (high - low) * torch.rand(batch_size, generator=generator)

    azimuth = torch.deg2rad(uniform(config.azimuth_range))
    elevation = torch.deg2rad(uniform(config.elevation_range))
    distance = uniform(config.distance_range)
    fov_y = torch.deg2rad(uniform(config.fov_range))
    target = config.center_jitter * torch.randn(batch_size, 3, generator=generator)
    up = torch.tensor([0.0, 0.0, 1.0]) + config.up_jitter * torch.randn(batch_size, 3, generator=generator)
    if config.overhead_fraction > 0:
        overhead = torch.rand(batch_size, generator=generator) < config.overhead_fraction
        elevation = torch.where(overhead, torch.deg2rad(uniform(config.overhead_range)), elevation)
    return orbit_cameras(azimuth, elevation, distance, fov_y, target, F.normalize(up, dim=-1))


def turntable_cameras(
    num_views: int, elevation_deg: float, distance: float, fov_deg: float, target: torch.Tensor | None = None
) -> Cameras:
    """``num_views`` cameras evenly spaced in azimuth, starting at the front, around ``target`` (3, world units;
    default the origin), for validation and turntables."""
    azimuth = torch.arange(num_views, dtype=torch.float32) * (2 * math.pi / num_views)
    full = torch.ones(num_views)
    targets = None if target is None else target.to(torch.float32).expand(num_views, 3)
    return orbit_cameras(
        azimuth, full * math.radians(elevation_deg), full * distance, full * math.radians(fov_deg), targets
    )


def generate_rays(cameras: Cameras, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space rays through pixel centres.

    Returns origins and unit directions, each B×H×W×3, on the cameras' device.
    """
    device, dtype = cameras.c2w.device, cameras.c2w.dtype
    focal = 0.5 * height / torch.tan(0.5 * cameras.fov_y)  # B, in pixels
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    x_cam = (xs - 0.5 * width)[None] / focal[:, None, None]
    y_cam = -(ys - 0.5 * height)[None] / focal[:, None, None]
    dirs_cam = torch.stack([x_cam, y_cam, -torch.ones_like(x_cam)], dim=-1)  # B×H×W×3
    directions = F.normalize(torch.einsum("bij,bhwj->bhwi", cameras.c2w[:, :3, :3], dirs_cam), dim=-1)
    origins = cameras.c2w[:, None, None, :3, 3].expand_as(directions)
    return origins, directions
