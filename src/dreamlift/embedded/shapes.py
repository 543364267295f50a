"""Procedural training images for the embedded prior: one coloured primitive on a plain light background.

Each scene is a signed distance function (cube, sphere, cone, cylinder, torus; upright about world z, varied in
size and proportion), rendered by sphere tracing from a camera drawn from the same ranges ``text3d`` samples,
with Lambertian shading under a varied light. Everything is a pure function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dreamlift.priors.views import VIEWS, view_index, view_suffix
from dreamlift.renderers.cameras import CameraConfig, generate_rays, orbit_cameras, sample_cameras

SHAPES = ("cube", "sphere", "cone", "cylinder", "torus")
"""Shapes the embedded prior knows."""
COLOURS = {
    "red": (0.85, 0.08, 0.08),
    "orange": (0.98, 0.50, 0.05),
    "yellow": (0.95, 0.85, 0.10),
    "green": (0.10, 0.68, 0.15),
    "blue": (0.10, 0.25, 0.90),
    "purple": (0.55, 0.15, 0.75),
}
"""Colours the embedded prior knows, with their linear RGB albedo in [0, 1]."""


def caption(colour: str, shape: str, view: str | None = None) -> str:
    """The caption of a scene, e.g. ``"a red cube"``, ``"an orange cone"`` or ``"a red cube, side view"``."""
    article = "an" if colour[0] in "aeiou" else "a"
    return f"{article} {colour} {shape}" + (view_suffix(view) if view else "")


@dataclass
class ShapeBatch:
    """A batch of N rendered scenes.

    images: N×3×H×W in [0, 1]. colour, shape, view: N int64 indices into COLOURS, SHAPES, VIEWS.
    captions: N strings (with a view suffix on a random fraction of them).
    """

    images: torch.Tensor
    colour: torch.Tensor
    shape: torch.Tensor
    view: torch.Tensor
    captions: list[str]


def _box(x, y, z, a, b, c):
    q = torch.stack([x.abs() - a, y.abs() - b, z.abs() - c], dim=-1)
    return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)


def _sphere(x, y, z, a, b, c):
    return torch.sqrt(x * x + y * y + z * z + 1e-12) - a


def _cone(x, y, z, a, b, c):
    """Capped cone of base radius a at z = -c with its apex at z = +c (exact SDF, after Quilez)."""
    qx = torch.sqrt(x * x + y * y + 1e-12)
    ca_x = qx - torch.minimum(qx, torch.where(z < 0, a, torch.zeros_like(a)))
    ca_y = z.abs() - c
    h = ((qx * a + (c - z) * 2 * c) / (a * a + 4 * c * c)).clamp(0, 1)
    cb_x = qx - a * h
    cb_y = z - c + 2 * c * h
    sign = torch.where((cb_x < 0) & (ca_y < 0), -1.0, 1.0)
    return sign * torch.sqrt(torch.minimum(ca_x**2 + ca_y**2, cb_x**2 + cb_y**2) + 1e-12)


def _cylinder(x, y, z, a, b, c):
    d = torch.stack([torch.sqrt(x * x + y * y + 1e-12) - a, z.abs() - c], dim=-1)
    return d.clamp(min=0).norm(dim=-1) + d.max(dim=-1).values.clamp(max=0)


def _torus(x, y, z, a, b, c):
    return torch.sqrt((torch.sqrt(x * x + y * y + 1e-12) - a) ** 2 + z * z + 1e-12) - b


_SDF_BY_SHAPE = (_box, _sphere, _cone, _cylinder, _torus)
"""Signed distance functions in the order of SHAPES; each takes object-space x, y, z (N×R) and params a, b, c (N×1)."""


def _sdf(points: torch.Tensor, shape: torch.Tensor, params: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Signed distance (N×R) of points (N×R×3) to each scene's primitive; params N×3 sizes, yaw N (radians)."""
    cos, sin = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
    x = cos * points[..., 0] + sin * points[..., 1]
    y = -sin * points[..., 0] + cos * points[..., 1]
    z = points[..., 2]
    distance = torch.empty_like(z)
    for index, sdf in enumerate(_SDF_BY_SHAPE):
        rows = shape == index
        if rows.any():
            a, b, c = params[rows].split(1, dim=-1)
            distance[rows] = sdf(x[rows], y[rows], z[rows], a, b, c)
    return distance


def _shape_params(shape: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random size parameters (N×3) per shape, sized so objects fill a similar part of the frame."""
    n = shape.shape[0]
    u = torch.rand(n, 3, generator=generator)
    size = 0.36 + 0.14 * u[:, 0]
    params = torch.zeros(n, 3)
    cube = torch.stack([size * 0.8, size * 0.8, size * 0.8], -1) * (0.9 + 0.2 * u[:, 1:2])
    cube[:, 2] = size * 0.8 * (0.85 + 0.3 * u[:, 2])
    sphere = torch.stack([size, size, size], -1)
    cone = torch.stack([size * (0.75 + 0.3 * u[:, 1]), size, size * (0.9 + 0.3 * u[:, 2])], -1)
    cylinder = torch.stack([size * (0.6 + 0.3 * u[:, 1]), size, size * (0.8 + 0.3 * u[:, 2])], -1)
    torus = torch.stack([size * (0.85 + 0.2 * u[:, 1]), size * (0.25 + 0.15 * u[:, 2]), size], -1)
    table = torch.stack([cube, sphere, cone, cylinder, torus], 0)  # S×N×3
    params = table.gather(0, shape[None, :, None].expand(1, n, 3))[0]
    return params


def render_shapes(
    colour: torch.Tensor,
    shape: torch.Tensor,
    generator: torch.Generator,
    camera_config: CameraConfig,
    resolution: int = 64,
    supersample: int = 2,
    overhead_fraction: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render scenes of the given colour and shape indices (each N); returns N×3×H×W images and N view indices.

    A fraction ``overhead_fraction`` of cameras is raised to 60–85° elevation so that the overhead view
    suffix is seen in training (text3d's default range stays below it).
    """
    n = colour.shape[0]
    cameras = sample_cameras(camera_config, n, generator)
    overhead = torch.rand(n, generator=generator) < overhead_fraction
    raised = torch.deg2rad(60.5 + 24.5 * torch.rand(n, generator=generator))
    if overhead.any():
        elevation = torch.where(overhead, raised, cameras.elevation)
        cameras = orbit_cameras(cameras.azimuth, elevation, cameras.distance, cameras.fov_y)
    size = resolution * supersample
    origins, dirs = generate_rays(cameras, size, size)
    origins, dirs = origins.reshape(n, -1, 3), dirs.reshape(n, -1, 3)
    params = _shape_params(shape, generator)
    yaw = 2 * torch.pi * torch.rand(n, generator=generator)

    t = (cameras.distance[:, None] - 1.0).clamp(min=0).expand(origins.shape[:2]).clone()
    for _ in range(48):
        d = _sdf(origins + t[..., None] * dirs, shape, params, yaw)
        t = t + d.clamp(min=-0.05)
    points = origins + t[..., None] * dirs
    hit = _sdf(points, shape, params, yaw).abs() < 2e-3
    hit &= t < 4.0

    eps = 1e-3
    offsets = torch.eye(3) * eps
    normal = torch.stack(
        [
            _sdf(points + offsets[i], shape, params, yaw) - _sdf(points - offsets[i], shape, params, yaw)
            for i in range(3)
        ],
        dim=-1,
    )
    normal = F.normalize(normal, dim=-1)

    toward_camera = F.normalize(cameras.positions, dim=-1)
    light = F.normalize(toward_camera + 0.8 * torch.randn(n, 3, generator=generator) + torch.tensor([0, 0, 0.6]), dim=-1)
    ambient = 0.3 + 0.2 * torch.rand(n, 1, generator=generator)
    diffuse = (normal * light[:, None]).sum(-1).clamp(min=0)
    albedo = torch.tensor(list(COLOURS.values()))[colour]
    albedo = (albedo * (0.9 + 0.2 * torch.rand(n, 1, generator=generator))).clamp(0, 1)
    shaded = albedo[:, None] * (ambient + (1 - ambient) * diffuse)[..., None]
    background = (0.88 + 0.12 * torch.rand(n, 1, 1, generator=generator)).expand(n, 1, 3)
    image = torch.where(hit[..., None], shaded, background)
    image = image.reshape(n, size, size, 3).permute(0, 3, 1, 2)
    image = F.avg_pool2d(image, supersample)
    return image.clamp(0, 1), view_index(cameras.azimuth, cameras.elevation)


def sample_shapes(
    num: int,
    seed: int,
    camera_config: CameraConfig | None = None,
    resolution: int = 64,
    view_caption_fraction: float = 0.5,
) -> ShapeBatch:
    """``num`` random scenes (colour and shape uniform), deterministic in ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    colour = torch.randint(len(COLOURS), (num,), generator=generator)
    shape = torch.randint(len(SHAPES), (num,), generator=generator)
    images, view = render_shapes(colour, shape, generator, camera_config or CameraConfig(), resolution)
    with_view = torch.rand(num, generator=generator) < view_caption_fraction
    names = list(COLOURS)
    captions = [
        caption(names[c], SHAPES[s], VIEWS[v] if w else None)
        for c, s, v, w in zip(colour.tolist(), shape.tolist(), view.tolist(), with_view.tolist())
    ]
    return ShapeBatch(images, colour, shape, view, captions)
