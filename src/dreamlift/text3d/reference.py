"""A reference view (image-to-3D): a picture the model must show from one known camera, while the guidance shapes
every other view (RealFusion, Magic123, DreamGaussian's image mode, stable-dreamfusion's ``--image``).

Each step, besides the guidance's random views, every particle is rendered (albedo) from the reference camera
and pulled towards the picture: the squared colour difference over the object's pixels and the squared
difference between the render's opacity and the object's mask over all of them. The picture's alpha is the mask
where it has one; otherwise the pixels that differ from the colour of its border are the object (a plain
background, as the embedded prior draws and its shapes renderer makes). A picture that is not square is padded
to a square with background; the camera's field of view spans the square.

With ``draw`` the reference is no picture of the user's but the prior's own drawing of the prompt from the
reference camera (text → image → 3D): the view fixes the pose that score distillation, which sees one random view
at a time, leaves free.

The run folder keeps the picture as it was read, with its mask in the alpha channel (``reference.png``), and a
resumed run reads that copy, so it needs nothing outside the folder. The reference holds stage 1 (the NeRF or the
Gaussians); the refine stage starts from it and refines it by the guidance alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from dreamlift.errors import UsageError
from dreamlift.io import atomic_path
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.sampling import sample_images
from dreamlift.priors.views import view_for_angles, view_suffix
from dreamlift.render.output import RenderOutput
from dreamlift.scene.background import border_colour
from dreamlift.scene.cameras import Cameras, orbit_cameras

REFERENCE_FILE = "reference.png"
"""The run folder's copy of the picture (RGBA: the mask in alpha)."""
MAX_PIXELS = 4096 * 4096
"""The largest picture read (pixels): a reference is resized to the render size, tens to hundreds of pixels."""


@dataclass
class ReferenceConfig:
    """The reference view of an image-to-3D run (``text3d --image``)."""

    image: str = ""
    """The picture (PNG, JPEG, WebP…, 8-bit grey or colour, with or without alpha); empty: no reference view, or
    one the prior draws (``draw``)."""
    draw: bool = False
    """Text → image → 3D: without an ``image``, the prior draws the prompt as seen from the reference camera (its
    view suffix, e.g. ", overhead view") and that drawing is the reference."""
    draw_steps: int = 30
    """Sampler steps of the drawing."""
    draw_guidance: float = 7.5
    """Classifier-free guidance scale of the drawing (the prior's sampling scale, not distillation's)."""
    azimuth: float = 0.0
    """Azimuth of its camera in degrees (0: the front, +x)."""
    elevation: float = 15.0
    """Elevation of its camera above the horizon in degrees."""
    distance: float = 1.8
    """Distance of its camera from the origin (world units)."""
    fov: float = 47.5
    """Vertical (and horizontal) field of view of its camera in degrees."""
    rgb_weight: float = 1000.0
    """Weight of the mean squared colour difference over the object's pixels (colours in [0, 1])."""
    mask_weight: float = 1000.0
    """Weight of the mean squared difference between the render's opacity and the object's mask."""
    background_tolerance: float = 0.08
    """A picture without alpha: the largest difference (per channel, in [0, 1]) from its border's median colour
    that is still background."""

    def __post_init__(self):
        if not 0 < self.fov < 180 or self.distance <= 0:
            raise ValueError("reference.fov must lie in (0, 180) degrees and reference.distance be > 0")
        if self.rgb_weight < 0 or self.mask_weight < 0:
            raise ValueError("reference weights must be >= 0")
        if not 0 < self.background_tolerance < 1:
            raise ValueError("reference.background_tolerance must lie in (0, 1)")
        if self.draw_steps < 1 or self.draw_guidance < 0:
            raise ValueError("reference.draw_steps must be >= 1 and reference.draw_guidance >= 0")

    @property
    def enabled(self) -> bool:
        """Whether the run has a reference view: a picture, or one the prior draws."""
        return bool(self.image) or self.draw

    def camera(self) -> Cameras:
        """The reference camera (a batch of one, on the CPU)."""
        one = torch.ones(1)
        return orbit_cameras(
            torch.deg2rad(one * self.azimuth),
            torch.deg2rad(one * self.elevation),
            one * self.distance,
            torch.deg2rad(one * self.fov),
        )


def read_picture(path: Path | str, background_tolerance: float) -> torch.Tensor:
    """A picture as RGBA 4×S×S in [0, 1] (padded to a square with transparent background), its alpha the object's
    mask: the file's own, or the pixels that differ from its border's median colour by more than
    ``background_tolerance``. A missing or unreadable file, or one that is not an 8-bit picture, is a UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such picture")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise UsageError(
                    f"{path} is {image.width}×{image.height} pixels; a reference picture has at most 4096²"
                )
            if image.mode not in ("1", "L", "LA", "P", "PA", "RGB", "RGBA"):
                raise UsageError(f"{path} is a {image.mode} image; a reference is an 8-bit grey or colour picture")
            has_alpha = image.mode in ("LA", "PA", "RGBA") or "transparency" in image.info
            pixels = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        raise UsageError(f"{path} is not a picture dreamlift can read ({error})") from None
    rgba = torch.from_numpy(pixels).permute(2, 0, 1)  # 4×H×W
    if not has_alpha:
        rgba = with_border_mask(rgba[:3], background_tolerance)
    if rgba[3].max() == 0:
        raise UsageError(f"{path} shows no object: every pixel is transparent or of its border's colour")
    background = border_colour(rgba[:3])
    height, width = rgba.shape[1:]
    side = max(height, width)
    square = torch.cat([background[:, None, None].expand(3, side, side), torch.zeros(1, side, side)])
    top, left = (side - height) // 2, (side - width) // 2
    square[:, top : top + height, left : left + width] = rgba
    return square


def with_border_mask(rgb: torch.Tensor, tolerance: float) -> torch.Tensor:
    """RGBA 4×H×W: a picture 3×H×W with the mask of the pixels that differ from its border's colour by more than
    ``tolerance`` in some channel."""
    differs = (rgb - border_colour(rgb)[:, None, None]).abs().amax(dim=0) > tolerance
    return torch.cat([rgb, differs[None].float()])


@torch.no_grad()
def draw_picture(prior: DiffusionPrior, prompt: str, config: ReferenceConfig, seed: int) -> torch.Tensor:
    """RGBA 4×S×S: the prior's drawing of ``prompt`` seen from the reference camera (the prompt with that view's
    suffix; the prior's own resolution), masked by its border's colour. A drawing of nothing but background is a
    UsageError."""
    view = view_suffix(view_for_angles(config.azimuth, config.elevation))
    generator = torch.Generator().manual_seed(seed)
    drawing = sample_images(prior, [prompt + view], config.draw_steps, config.draw_guidance, generator)[0].cpu()
    picture = with_border_mask(drawing.float(), config.background_tolerance)
    if picture[3].max() == 0:
        raise UsageError(f'the prior drew "{prompt + view}" as nothing but background; give a picture (--image)')
    return picture


def write_picture(rgba: torch.Tensor, path: Path) -> None:
    """An RGBA picture (4×S×S in [0, 1]) as an 8-bit PNG, atomically."""
    pixels = (rgba.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, pixels, extension=".png")


class ReferenceView:
    """The reference picture of a run, its camera, and the loss that holds a scene to it."""

    def __init__(self, config: ReferenceConfig, picture: torch.Tensor, device: torch.device):
        self.config = config
        self.picture = picture.to(device)
        self.camera = config.camera().to(device)
        self._targets: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def for_run(
        cls,
        config: ReferenceConfig,
        run_dir: Path,
        device: torch.device,
        resume: bool,
        draw: Callable[[], torch.Tensor],
    ) -> ReferenceView:
        """A fresh run reads ``config.image`` (or, with ``config.draw``, calls ``draw`` for the prior's drawing) and
        keeps a copy in the run folder; a resumed run reads that copy."""
        copy = run_dir / REFERENCE_FILE
        if resume:
            if not copy.is_file():
                raise UsageError(f"{run_dir} is an image-to-3D run without its {REFERENCE_FILE}")
            return cls(config, read_picture(copy, config.background_tolerance), device)
        picture = read_picture(config.image, config.background_tolerance) if config.image else draw()
        write_picture(picture, copy)
        return cls(config, picture, device)

    def target(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The picture at ``size`` pixels (area-averaged): colour 1×3×S×S and mask 1×1×S×S."""
        if size not in self._targets:
            resized = F.interpolate(self.picture[None], size=(size, size), mode="area")
            self._targets[size] = (resized[:, :3], resized[:, 3:])
        return self._targets[size]

    def loss(self, out: RenderOutput) -> torch.Tensor:
        """The weighted reference loss of a render from :attr:`camera` (albedo, 1×3×S×S)."""
        colour, mask = self.target(out.rgb.shape[-1])
        rgb = (mask * (out.rgb - colour).square()).sum() / (3 * mask.sum()).clamp(min=1e-6)
        silhouette = (out.opacity - mask).square().mean()
        return self.config.rgb_weight * rgb + self.config.mask_weight * silhouette
