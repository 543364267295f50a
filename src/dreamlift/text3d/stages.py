"""The stages of a text3d run, each a small object that says what its optimisation is made of.

Stage 1 optimises a hash-grid NeRF (:class:`NeRFStage`) or, with ``scene: gaussians``, 3D Gaussians that are
densified and pruned as they go (:class:`GaussianStage`, DreamGaussian). Stage 2 (:class:`MeshStage`, Magic3D's
coarse to fine) starts a DMTet mesh from a NeRF — its SDF fitted to the volume the NeRF's mesh is exported
from, its texture field a copy of the NeRF's field — and refines both with the same guidance at a higher render
resolution and a narrower timestep range, rasterized instead of ray-marched, with normal-consistency and
Laplacian regularisers.

The trainer (:mod:`dreamlift.text3d.trainer`) runs each one the same way; what differs between them lives
here: the step count, the render size, the guidance's timestep range, the optimiser, the scene, how the scenes
start, the regularisers and what changes the scene between steps.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from dreamlift.errors import UsageError
from dreamlift.guidance import GuidanceConfig
from dreamlift.render.output import RenderOutput, Shading
from dreamlift.scene.background import background_mask, enclosed_background
from dreamlift.scene.fields import RadianceField
from dreamlift.scene.mesh_geometry import laplacian_smoothing, normal_consistency
from dreamlift.text3d.config import OptimConfig, Text3DConfig
from dreamlift.text3d.export import surface_volume
from dreamlift.text3d.scenes import GaussianScene, MeshScene, NeRFScene, Scene


class Stage:
    """What one stage of a text3d run optimises, for how long, at what render size and with which losses."""

    name: str
    """Recorded in checkpoints, so that a run resumes (and exports) the stage that wrote them."""
    progress_label: str
    """The progress bar's label."""

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

    def guidance_config(self) -> GuidanceConfig:
        """The guidance settings of this stage."""
        return self.config.guidance

    def make_scene(self, device: torch.device) -> Scene:
        """An untrained scene of this stage, on ``device``."""
        raise NotImplementedError

    def start(self, scenes: list[Scene], start_from: list[NeRFScene] | None) -> list[dict]:
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


def build_optimizer(scene: NeRFScene | MeshScene, config: OptimConfig) -> torch.optim.Adam:
    """Adam over the scene's parameter groups, each with its learning rate."""
    groups = scene.parameter_groups(config.lr_grid, config.lr_mlp, config.lr_background)
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
        if r.opaque > 0:
            o = out.opacity.clamp(1e-5, 1 - 1e-5)
            loss = loss + r.opaque * (-(o * o.log() + (1 - o) * (1 - o).log())).mean()
        if denoised is not None and self.carving(progress):
            mask = background_mask(denoised, out.optical_depth.shape[-2:], r.carve_tolerance)
            if r.carve_region == "holes":
                mask = enclosed_background(mask)
            loss = loss + r.carve * (mask * out.optical_depth).mean()
        if denoised is not None and r.pixel_target > 0:
            target = F.interpolate(denoised, size=out.rgb.shape[-2:], mode="bilinear", align_corners=False)
            loss = loss + r.pixel_target * (out.rgb - target).square().mean()
        return loss


class NeRFStage(FirstStage):
    """Stage 1: a NeRF, ray-marched, with DreamFusion's orientation penalty and optional opacity terms."""

    name = "nerf"

    def make_optimizer(self, scene: NeRFScene) -> torch.optim.Adam:
        return build_optimizer(scene, self.config.optim)

    def make_scene(self, device: torch.device) -> NeRFScene:
        c = self.config
        return NeRFScene(c.field, c.renderer, c.background, device).to(device)

    def regularisation(
        self,
        scene: NeRFScene,
        out: RenderOutput,
        progress: float,
        generator: torch.Generator,
        denoised: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r = self.config.regularisers
        loss = self.render_regularisation(out, progress, denoised)
        if self.config.field.geometry == "sdf":
            loss = loss + self.sdf_regularisation(scene.field, generator, out.rgb.device)
        if out.orientation is not None and r.orientation > 0:
            loss = loss + r.orientation * out.orientation
        return loss

    def sdf_regularisation(
        self, field: RadianceField, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        """An ``sdf`` field's terms: the eikonal term at random points of the scene cube, and the normal smoothness
        at those of them within 0.1 of the surface, moved onto it."""
        r = self.config.regularisers
        loss = torch.zeros((), device=device)
        if r.eikonal == 0 and r.normal_smoothness == 0:
            return loss
        bound = self.config.field.bound
        points = ((torch.rand(r.eikonal_points, 3, generator=generator) * 2 - 1) * bound).to(device)
        if r.eikonal > 0:
            loss = loss + r.eikonal * field.eikonal(points)
        if r.normal_smoothness > 0:
            surface = field.surface_points(points, band=0.1)
            if len(surface):
                offsets = torch.randn(len(surface), 3, generator=generator).to(device) * r.normal_smoothness_step
                loss = loss + r.normal_smoothness * field.normal_smoothness(surface, offsets)
        return loss


class GaussianStage(FirstStage):
    """Stage 1 as 3D Gaussians (DreamGaussian): splatted, with a learning rate per parameter, the means' falling
    over the run, and densified and pruned every ``gaussians.model.densify_every`` steps (3DGS's rules)."""

    name = "gaussians"

    def make_scene(self, device: torch.device) -> GaussianScene:
        c, g = self.config, self.config.gaussians
        return GaussianScene(g.model, g.splatting, g.surface_density, c.field.bound, c.background, device).to(device)

    def make_optimizer(self, scene: GaussianScene) -> torch.optim.Adam:
        o = self.config.gaussians.optim
        rates = {
            "means": o.lr_means,
            "log_scales": o.lr_scales,
            "quaternions": o.lr_quaternions,
            "opacity_logits": o.lr_opacities,
            "colour_logits": o.lr_colours,
            "background": o.lr_background,
        }
        return torch.optim.Adam(scene.parameter_groups(rates), betas=o.betas, eps=o.eps)

    def regularisation(
        self,
        scene: GaussianScene,
        out: RenderOutput,
        progress: float,
        generator: torch.Generator,
        denoised: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The render's terms only (:meth:`FirstStage.render_regularisation`): the field's (eikonal, normal
        smoothness, orientation) have no Gaussian counterpart."""
        return self.render_regularisation(out, progress, denoised)

    def after_step(
        self,
        scene: GaussianScene,
        optimizer: torch.optim.Adam,
        out: RenderOutput,
        step: int,
        generator: torch.Generator,
    ) -> dict | None:
        """Set the means' learning rate for the next step, add this step's view-space gradients to the statistics,
        and densify and prune on the schedule; returns the counts of a densification."""
        g = self.config.gaussians
        for group in optimizer.param_groups:
            if group["name"] == "means":
                group["lr"] = g.optim.means_rate(step / self.steps)
        if out.screen_means.grad is not None:
            scene.gaussians.record_gradients(out.screen_means.grad, out.radii, out.rgb.shape[-1])
        if step % g.model.densify_every == 0 and step <= g.model.densify_until * self.steps and step < self.steps:
            counts = scene.gaussians.densify_and_prune(optimizer, generator)
            return {"step": step, **counts, "count": len(scene.gaussians)}
        return None


class MeshStage(Stage):
    """Stage 2: a DMTet mesh with a texture field, rasterized, smoothed by normal consistency and Laplacian terms."""

    name = "mesh"
    progress_label = "text3d mesh"

    @property
    def steps(self) -> int:
        return self.config.refine.steps

    def make_optimizer(self, scene: MeshScene) -> torch.optim.Adam:
        return build_optimizer(scene, self.config.refine.optim)

    def resolution_at(self, step: int) -> int:
        return self.config.refine.resolution

    def guidance_config(self) -> GuidanceConfig:
        """The run's guidance with the stage's narrower timestep range (no annealing)."""
        r = self.config.refine
        return dataclasses.replace(self.config.guidance, t_min=r.t_min, t_max=r.t_max, t_max_final=r.t_max)

    def make_scene(self, device: torch.device) -> MeshScene:
        c, r = self.config, self.config.refine
        return MeshScene(c.field, r.dmtet, r.rasterizer, c.background, device).to(device)

    def start(self, scenes: list[Scene], start_from: list[NeRFScene] | None) -> list[dict]:
        """Fit each mesh scene to its stage-1 NeRF's export volume (:func:`surface_volume` with the export's
        settings and ``refine.threshold``: with ``export.solidify``, the cleaned solid the stage-1 mesh is made
        of), scaled to [−1, 1]; a NeRF with no surface there is a UsageError."""
        if start_from is None or len(start_from) != len(scenes):
            count = 0 if start_from is None else len(start_from)
            raise ValueError(f"the mesh stage needs {len(scenes)} stage-1 scenes, got {count}")
        export = dataclasses.replace(self.config.export, threshold=self.config.refine.threshold)
        records = []
        for scene, nerf in zip(scenes, start_from, strict=True):
            nerf.eval()
            volume = surface_volume(nerf, export)
            threshold = volume.threshold
            error = scene.initialise_from(nerf, volume.normalised_sdf, show_progress=True)
            with torch.no_grad():
                if len(scene.geometry()[1]) == 0:
                    raise UsageError(
                        f"the NeRF has no surface at density {threshold:.3g} on a "
                        f"{scene.geometry.config.grid_resolution}³ grid, so there is no mesh to refine "
                        "(set refine.threshold lower, or refine.dmtet.grid_resolution higher)"
                    )
            records.append({"threshold": threshold, "fit_mse": round(error, 6)})
        return records

    def regularisation(
        self,
        scene: MeshScene,
        out: RenderOutput,
        progress: float,
        generator: torch.Generator,
        denoised: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r = self.config.refine
        loss = torch.zeros((), device=out.rgb.device)
        if out.mesh is None:  # an empty mesh renders no geometry to regularise
            return loss
        vertices, faces = out.mesh
        if r.normal_consistency > 0:
            loss = loss + r.normal_consistency * normal_consistency(vertices, faces)
        if r.laplacian > 0:
            loss = loss + r.laplacian * laplacian_smoothing(vertices, faces)
        return loss


STAGES: dict[str, type[Stage]] = {stage.name: stage for stage in (NeRFStage, GaussianStage, MeshStage)}
"""The stages by the name their checkpoints record."""


def first_stage(config: Text3DConfig) -> FirstStage:
    """Stage 1 of a run: of its ``scene`` kind."""
    return GaussianStage(config) if config.scene == "gaussians" else NeRFStage(config)
