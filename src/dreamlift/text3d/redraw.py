"""The prior's redrawing of a scene's renders (SDEdit: noised part of the way, denoised again), whose colours and
shapes are the prior's own: the export's colours (text3d/surface_colours.py) and stage 1's redraw-and-fit views
(text3d/redraw_fit.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.priors.sampling import redraw_images
from dreamlift.scene.cameras import Cameras


@dataclass
class RedrawConfig:
    """The prior's redrawing of a scene's renders: the export's colours (text3d/surface_colours.py), and stage 1's
    redraw-and-fit views (text3d/redraw_fit.py)."""

    strength: float = 0.0
    """How far into the noise schedule each view is noised before the prior denoises it again (0–1; diffusers'
    img2img ``strength``); 0 turns the redrawing off and keeps the renders' own colours. (DreamGaussian's
    refinement, with Stable Diffusion at CFG 100, noises a fifth of the way; the embedded prior's colours need
    more: see the presets.)"""
    steps: int = 20
    """Steps of the full schedule, of which the last ``strength`` share are run (too few turn some colours into
    their neighbours)."""
    guidance_scale: float = 7.5
    """Classifier-free guidance scale of the redrawing (the prior's sampling scale, not distillation's)."""
    background_tolerance: float = 0.08
    """Largest difference (per channel, in [0, 1]) from a redrawing's border colour at which a pixel counts as
    background there, and is left out."""
    size: int = 64
    """Side in pixels of the rendered and redrawn views (the embedded prior's 64: finer ones cost time and change
    little)."""

    def __post_init__(self):
        if not 0 <= self.strength <= 1:
            raise ValueError("redraw.strength must lie in [0, 1]")
        if self.steps < 1 or self.guidance_scale < 0 or self.size < 8:
            raise ValueError("redraw.steps must be >= 1, redraw.guidance_scale >= 0 and redraw.size >= 8")
        if not 0 < self.background_tolerance < 1:
            raise ValueError("redraw.background_tolerance must lie in (0, 1)")


class PriorRedraw:
    """Views B×3×H×W of the scene (albedo renders on its background, from ``cameras``) → the same views redrawn
    by ``prior`` for the run's ``prompts`` (view-dependent as in training), B×3×H×W in [0, 1]; the noise comes
    from ``seed``, so one run redraws alike each time."""

    def __init__(self, prior: DiffusionPrior, prompts: PromptEmbeddings, config: RedrawConfig, seed: int):
        self.prior, self.prompts, self.config, self.seed = prior, prompts, config, seed

    def __call__(self, images: torch.Tensor, cameras: Cameras) -> torch.Tensor:
        cond, uncond = self.prompts.for_cameras(cameras.azimuth, cameras.elevation)
        c = self.config
        generator = torch.Generator().manual_seed(self.seed)
        device = self.prior.device
        redrawn = redraw_images(
            self.prior, images.to(device), cond, uncond, c.strength, c.steps, c.guidance_scale, generator
        )
        return redrawn.to(images.device)
