"""Procedural training images for the embedded prior: one coloured primitive on a plain light background.

Each scene is a signed distance function (cube, sphere, cone, cylinder, torus; upright about world z, varied in
size and proportion), rendered by sphere tracing from a camera drawn from the same ranges ``text3d`` samples,
with Lambertian shading under a varied light. Everything is a pure function of the seed.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from dreamlift.priors.views import VIEWS, view_index, view_suffix
from dreamlift.scene.cameras import CameraConfig, Cameras, generate_rays, sample_cameras

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


def nearest_hue_colour(rgb) -> str:
    """The palette colour (of COLOURS) whose hue is nearest that of ``rgb`` (3 values in [0, 1])."""
    hue = colorsys.rgb_to_hsv(*(float(c) for c in rgb))[0]

    def distance(rgb) -> float:
        h = colorsys.rgb_to_hsv(*rgb)[0]
        return min(abs(h - hue), 1 - abs(h - hue))

    return min(COLOURS, key=lambda name: distance(COLOURS[name]))


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


def signed_distance(points: torch.Tensor, shape: str, params: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Signed distance (R) of world points R×3 to one primitive of ``shape`` centred at the origin, upright about z,
    with size parameters ``params`` (3: a, b, c, as the dataset draws them) turned by ``yaw`` (radians, a 0-d
    tensor); differentiable in all three."""
    index = torch.tensor([SHAPES.index(shape)], device=points.device)
    return _sdf(points[None], index, params[None], yaw.reshape(1))[0]


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


@dataclass
class Scenes:
    """N drawn scenes, everything but the object's placement: camera, primitive, material, light, background."""

    cameras: Cameras
    shape: torch.Tensor
    """N shape indices into SHAPES."""
    params: torch.Tensor
    """N×3 size parameters of the primitive (world units)."""
    yaw: torch.Tensor
    """N rotations of the primitive about world z (radians)."""
    light: torch.Tensor
    """N×3 unit directions toward the light."""
    ambient: torch.Tensor
    """N×1 ambient fraction of the shading."""
    albedo: torch.Tensor
    """N×3 linear RGB albedo in [0, 1]."""
    background: torch.Tensor
    """N×1×3 background grey level."""

    def repeat(self, times: int) -> Scenes:
        """Each scene repeated ``times`` times in a row (N·times scenes), e.g. the frames of a clip."""
        cameras = Cameras(*(t.repeat_interleave(times, 0) for t in vars(self.cameras).values()))
        others = {k: v.repeat_interleave(times, 0) for k, v in vars(self).items() if k != "cameras"}
        return Scenes(cameras=cameras, **others)

    def to(self, device: torch.device | str) -> Scenes:
        """The same scenes with every tensor on ``device``."""
        others = {k: v.to(device) for k, v in vars(self).items() if k != "cameras"}
        return Scenes(cameras=self.cameras.to(device), **others)


def draw_scenes(
    colour: torch.Tensor,
    shape: torch.Tensor,
    generator: torch.Generator,
    camera_config: CameraConfig,
    overhead_fraction: float = 0.1,
) -> Scenes:
    """Random scenes for the given colour and shape indices (each N), deterministic in ``generator``.

    A fraction ``overhead_fraction`` of cameras is raised to the camera config's ``overhead_range`` (60.5–85°) so
    that the overhead view suffix is seen in training.
    """
    n = colour.shape[0]
    cameras = sample_cameras(replace(camera_config, overhead_fraction=overhead_fraction), n, generator)
    params = _shape_params(shape, generator)
    yaw = 2 * torch.pi * torch.rand(n, generator=generator)
    toward_camera = F.normalize(cameras.positions, dim=-1)
    light = F.normalize(
        toward_camera + 0.8 * torch.randn(n, 3, generator=generator) + torch.tensor([0, 0, 0.6]), dim=-1
    )
    ambient = 0.3 + 0.2 * torch.rand(n, 1, generator=generator)
    albedo = torch.tensor(list(COLOURS.values()))[colour]
    albedo = (albedo * (0.9 + 0.2 * torch.rand(n, 1, generator=generator))).clamp(0, 1)
    background = (0.88 + 0.12 * torch.rand(n, 1, 1, generator=generator)).expand(n, 1, 3)
    return Scenes(cameras, shape, params, yaw, light, ambient, albedo, background)


def reference_picture(colour: str, shape: str, camera: Cameras, seed: int = 0, resolution: int = 64) -> torch.Tensor:
    """A ground-truth picture (3×H×W in [0, 1]) of a ``colour`` ``shape`` seen by ``camera`` (a batch of one),
    its size, proportions, yaw, light and background drawn from the dataset's ranges by ``seed``; for testing
    image-to-3D against a known shape."""
    generator = torch.Generator().manual_seed(seed)
    index = torch.tensor([list(COLOURS).index(colour)]), torch.tensor([SHAPES.index(shape)])
    scenes = draw_scenes(*index, generator, CameraConfig(), overhead_fraction=0.0)
    return render_scenes(replace(scenes, cameras=camera), resolution)[0]


def render_scenes(
    scenes: Scenes,
    resolution: int = 64,
    supersample: int = 2,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sphere-traced images N×3×H×W in [0, 1] of the scenes, on the scenes' device.

    offset: N×3 world-space translation of each object (default 0). scale: N uniform scale factors (default 1).
    """
    n, device = len(scenes.cameras), scenes.albedo.device
    offset = torch.zeros(n, 3, device=device) if offset is None else offset
    scale = torch.ones(n, device=device) if scale is None else scale
    size = resolution * supersample
    origins, dirs = generate_rays(scenes.cameras, size, size)
    origins, dirs = origins.reshape(n, -1, 3), dirs.reshape(n, -1, 3)

    def sdf(points: torch.Tensor) -> torch.Tensor:
        local = (points - offset[:, None]) / scale[:, None, None]
        return _sdf(local, scenes.shape, scenes.params, scenes.yaw) * scale[:, None]

    t = (scenes.cameras.distance[:, None] - 1.0).clamp(min=0).expand(origins.shape[:2]).clone()
    for _ in range(48):
        t = t + sdf(origins + t[..., None] * dirs).clamp(min=-0.05)
    points = origins + t[..., None] * dirs
    hit = (sdf(points).abs() < 2e-3) & (t < 4.0)

    offsets = torch.eye(3, device=device) * 1e-3
    normal = torch.stack([sdf(points + offsets[i]) - sdf(points - offsets[i]) for i in range(3)], dim=-1)
    normal = F.normalize(normal, dim=-1)
    diffuse = (normal * scenes.light[:, None]).sum(-1).clamp(min=0)
    shaded = scenes.albedo[:, None] * (scenes.ambient + (1 - scenes.ambient) * diffuse)[..., None]
    image = torch.where(hit[..., None], shaded, scenes.background)
    image = image.reshape(n, size, size, 3).permute(0, 3, 1, 2)
    return F.avg_pool2d(image, supersample).clamp(0, 1)


def render_shapes(
    colour: torch.Tensor,
    shape: torch.Tensor,
    generator: torch.Generator,
    camera_config: CameraConfig,
    resolution: int = 64,
    supersample: int = 2,
    overhead_fraction: float = 0.1,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render random scenes of the given colour and shape indices (each N); returns N×3×H×W images and N view
    indices, on the CPU. The scenes are drawn on the CPU (so ``generator`` fixes them on any device) and
    sphere-traced on ``device``."""
    scenes = draw_scenes(colour, shape, generator, camera_config, overhead_fraction)
    images = render_scenes(scenes.to(device), resolution, supersample).cpu()
    return images, view_index(scenes.cameras.azimuth, scenes.cameras.elevation)


def sample_shapes(
    num: int,
    seed: int,
    camera_config: CameraConfig | None = None,
    resolution: int = 64,
    view_caption_fraction: float = 0.5,
    device: torch.device | str = "cpu",
) -> ShapeBatch:
    """``num`` random scenes (colour and shape uniform), deterministic in ``seed``, rendered on ``device`` (the
    images agree across devices up to float rounding) and returned on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    colour = torch.randint(len(COLOURS), (num,), generator=generator)
    shape = torch.randint(len(SHAPES), (num,), generator=generator)
    images, view = render_shapes(colour, shape, generator, camera_config or CameraConfig(), resolution, device=device)
    with_view = torch.rand(num, generator=generator) < view_caption_fraction
    names = list(COLOURS)
    captions = [
        caption(names[c], SHAPES[s], VIEWS[v] if w else None)
        for c, s, v, w in zip(colour.tolist(), shape.tolist(), view.tolist(), with_view.tolist())
    ]
    return ShapeBatch(images, colour, shape, view, captions)
