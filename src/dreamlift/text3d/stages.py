"""The stages of a text3d run, each a small object that says what its optimisation is made of.

Stage 1 optimises a NeRF (text3d/nerf.py) or 3D Gaussians (text3d/gaussians.py); the refine stage
(text3d/refine.py, Magic3D's coarse to fine) a DMTet mesh started from a stage-1 NeRF. The trainer
(:mod:`dreamlift.text3d.trainer`) runs each one the same way; what differs between them lives in their stage: the
step count, the render size, the guidance's timestep range, the optimiser, the scene, how the scenes start, the
regularisers and what changes the scene between steps. This module holds what they share.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dreamlift.guidance import GuidanceConfig
from dreamlift.render.output import RenderOutput, Shading
from dreamlift.scene.background import background_mask, enclosed_background
from dreamlift.text3d.config import OptimConfig, Text3DConfig
from dreamlift.text3d.scenes import Scene


class Stage:
    """What one stage of a text3d run optimises, for how long, at what render size and with which losses."""

    name: str
    """Recorded in checkpoints, so that a run resumes (and exports) the stage that wrote them."""
    former_names: tuple[str, ...] = ()
    """Names older versions recorded for this stage (their checkpoints are read as this stage's)."""
    title: str
    """What the report calls this stage."""
    progress_label: str
    """The progress bar's label."""
    takes_reference_views: bool = True
    """Whether the run's held views (a reference picture, redraw-and-fit's redrawings) pull on this stage."""
    starts_refine: bool = False
    """Whether the refine stage can start from this stage's scenes."""

    def __init__(self, config: Text3DConfig):
        self.config = config

    @property
    def steps(self) -> int:
        raise NotImplementedError

    def make_optimizer(self, scene: Scene) -> torch.optim.Adam:
        """The optimiser of one of this stage's scenes."""
        raise NotImplementedError

    def resolution_at(self, step: int) -> int:
        """Render size in pixels at ``step``."""
        raise NotImplementedError

    def check_device(self, device: torch.device) -> None:
        """Refuse (UsageError) a backend this stage would use that ``device`` cannot run: none by default."""

    def guidance_config(self) -> GuidanceConfig:
        """The guidance settings of this stage."""
        return self.config.guidance

    def make_scene(self, device: torch.device) -> Scene:
        """An untrained scene of this stage, on ``device``."""
        raise NotImplementedError

    def start(self, scenes: list[Scene], start_from: list[Scene] | None) -> list[dict]:
        """Set up fresh scenes (one per particle) before the first step; returns a record per scene for the
        metrics (empty when there is nothing to say)."""
        return []

    def wants_denoised(self, progress: float, shading: Shading) -> bool:
        """Whether the regularisers at ``progress`` (0–1), on renders shaded ``shading``, read the guidance's
        denoised images."""
        return False

    def regularisation(
        self,
        scene: Scene,
        out: RenderOutput,
        progress: float,
        generator: torch.Generator,
        denoised: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The weighted regularisers of one particle (a scalar): of its scene and of this step's render output, at
        ``progress`` (0–1) through the stage; ``generator`` (CPU) draws any random points they need; ``denoised``:
        what the guidance pushes this particle's renders towards (B×3×S×S), when :meth:`wants_denoised`."""
        raise NotImplementedError

    def after_step(
        self, scene: Scene, optimizer: torch.optim.Adam, out: RenderOutput, step: int, generator: torch.Generator
    ) -> dict | None:
        """Change the scene (or its optimiser) after the optimiser step that made ``step`` steps done, given that
        step's render ``out`` (its gradients still in place); ``generator`` (CPU) draws anything random. Returns
        a record of what changed for the metrics, or None (nothing changes, by default)."""
        return None


def build_optimizer(groups: list[dict], config: OptimConfig) -> torch.optim.Adam:
    """Adam over a scene's parameter groups (each with its learning rate), with ``config``'s betas and eps."""
    return torch.optim.Adam(groups, betas=config.betas, eps=config.eps)


class FirstStage(Stage):
    """Stage 1, of either scene kind: its step count and render sizes come from ``train``, and the regularisers
    of what it renders — sparsity, opacity entropy, carving, the pixel target — from ``regularisers``."""

    progress_label = "text3d"

    @property
    def steps(self) -> int:
        return self.config.train.steps

    def resolution_at(self, step: int) -> int:
        return self.config.train.resolution_at(step)

    def wants_denoised(self, progress: float, shading: Shading) -> bool:
        # Both terms that read the denoised images do so on albedo renders only: a white textureless (or a
        # light-coloured lit) face can match the background colour, and carving would then tunnel through it;
        # and the pixel target is the colour the prior wants, which a shaded render does not show.
        return shading == "albedo" and (self.carving(progress) or self.config.regularisers.pixel_target > 0)

    def carving(self, progress: float) -> bool:
        """Whether the carving term applies at ``progress`` (0–1) through the stage."""
        r = self.config.regularisers
        return r.carve > 0 and progress < r.carve_until

    def render_regularisation(
        self, out: RenderOutput, progress: float, denoised: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The weighted terms of the render, whatever the scene: sparsity (early), opacity entropy, and, given
        ``denoised`` (B×3×S×S), carving where it shows background and the pixel target's distance to it."""
        r = self.config.regularisers
        loss = torch.zeros((), device=out.rgb.device)
        if r.sparsity > 0 and progress < r.sparsity_until:
            loss = loss + r.sparsity * out.opacity.mean()
        if r.opacity_entropy > 0:
            o = out.opacity.clamp(1e-5, 1 - 1e-5)
            loss = loss + r.opacity_entropy * (-(o * o.log() + (1 - o) * (1 - o).log())).mean()
        if denoised is not None and self.carving(progress):
            mask = background_mask(denoised, out.optical_depth.shape[-2:], r.carve_tolerance)
            if r.carve_region == "holes":
                mask = enclosed_background(mask)
            loss = loss + r.carve * (mask * out.optical_depth).mean()
        if denoised is not None and r.pixel_target > 0:
            target = F.interpolate(denoised, size=out.rgb.shape[-2:], mode="bilinear", align_corners=False)
            loss = loss + r.pixel_target * (out.rgb - target).square().mean()
        return loss
