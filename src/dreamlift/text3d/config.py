"""The configuration of a text3d run: one dataclass per component, composed in :class:`Text3DConfig`.

The NeRF stage reads ``train``, ``optim``, ``regularisers`` and ``shading``; with ``scene: gaussians`` stage 1
reads ``gaussians`` in place of the field, renderer, optimiser and regularisers; the refine stage (Magic3D's
second stage) reads ``refine``; all read the prior, guidance, camera, background and export sections.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from dreamlift.config import load_config
from dreamlift.errors import UsageError
from dreamlift.guidance import GuidanceConfig
from dreamlift.priors.diffusion import PriorConfig
from dreamlift.render.raster import RasterizerConfig
from dreamlift.render.splatting import SplattingConfig
from dreamlift.render.volume import VolumeRendererConfig
from dreamlift.runtime import check_seed
from dreamlift.scene.background import BackgroundConfig
from dreamlift.scene.cameras import CameraConfig
from dreamlift.scene.dmtet import DMTetConfig
from dreamlift.scene.fields import FieldConfig
from dreamlift.scene.gaussians import GaussianConfig
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.redraw_fit import RedrawFitConfig
from dreamlift.text3d.reference import ReferenceConfig


@dataclass
class ShadingConfig:
    """How training renders are shaded (DreamFusion): the mode is drawn per step."""

    albedo_only_steps: int = 100
    """Steps at the start that use plain albedo (the geometry first settles)."""
    lambertian_probability: float = 0.3
    """Chance of a Lambertian-shaded step afterwards."""
    textureless_probability: float = 0.1
    """Chance of a textureless (white, shaded) step; the rest are albedo steps."""

    def __post_init__(self):
        p, q = self.lambertian_probability, self.textureless_probability
        if p < 0 or q < 0 or p + q > 1 or self.albedo_only_steps < 0:
            raise ValueError("shading probabilities must be >= 0 with a sum <= 1, and albedo_only_steps >= 0")


@dataclass
class OptimConfig:
    """Adam with one learning rate per parameter group."""

    lr_grid: float = 1e-2
    """Hash-grid tables."""
    lr_mlp: float = 1e-3
    """The field's MLP."""
    lr_background: float = 1e-3
    """The background MLP (if any)."""
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-15

    def __post_init__(self):
        if min(self.lr_grid, self.lr_mlp, self.lr_background) < 0 or self.eps <= 0:
            raise ValueError("learning rates must be >= 0 and eps > 0")


@dataclass
class RegularisersConfig:
    """Weights of the regularisers added to the guidance loss."""

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"opaque": "opacity_entropy"}
    """Keys of older versions' config.yaml files, read under their new names."""

    orientation: float = 0.01
    """DreamFusion's penalty on visible normals facing away from the camera (shaded steps only)."""
    sparsity: float = 0.0
    """Mean opacity: discourages filling space."""
    sparsity_until: float = 1.0
    """Fraction of stage 1's steps (NeRF or Gaussians) during which the sparsity term applies."""
    opacity_entropy: float = 0.0
    """Entropy of the opacity: pushes each pixel to fully clear or fully covered."""
    eikonal: float = 0.0
    """``field.geometry: sdf``: weight of the mean (‖∇s‖ − 1)² at random points of the scene cube."""
    eikonal_points: int = 1024
    """Random points per step of each particle for the eikonal term."""
    normal_smoothness: float = 0.0
    """``field.geometry: sdf``: weight of the mean change of the surface normal over a random step of
    ``normal_smoothness_step`` at points moved onto the surface (from the eikonal term's points within 0.1)."""
    normal_smoothness_step: float = 0.02
    """Length (world units) of that random step: bumps narrower than a few steps are penalised most."""
    carve: float = 0.0
    """Carving: weight of the mean optical depth Σσδ of the rays whose pixel the guidance's denoised image shows
    as background (within ``carve_tolerance`` of its border's colour). Where an SDS target shows a hole through
    an opaque solid (a torus's, over a disc), the opacity is saturated and gives no gradient, and the prior's
    wish is met by painting the solid background-coloured; the optical depth does not saturate, so this term
    thins the solid along those rays until it opens. Albedo-shaded steps only: a lit or textureless face can
    match the background colour."""
    carve_region: Literal["background", "holes"] = "background"
    """Where carving thins: ``background``, every pixel the denoised image shows as background; ``holes``, only
    background the object encloses there (a torus's hole), not what lies around its outline: the guidance draws a
    cube at a random yaw in each view, and carving its outline shaves the corners off (text3d/stages.py)."""
    carve_until: float = 0.5
    """Fraction of stage 1's steps during which the carving term applies."""
    carve_tolerance: float = 0.08
    """Largest difference (per channel, in [0, 1]) from the denoised image's background colour that still counts
    as background."""
    pixel_target: float = 0.0
    """Weight of the mean squared difference (per pixel and channel, colours in [0, 1]) between each albedo render
    and the image its guidance step points to (the one-step denoised x̂₀, decoded; HiFA's image-space score
    distillation). The latent update is blind to what the VAE's encoder does not tell apart — the embedded VAE
    encodes a pink cube and a red one alike — and this term is not: it carries the prior's colour to the render."""

    def __post_init__(self):
        weights = (
            self.orientation,
            self.sparsity,
            self.opacity_entropy,
            self.eikonal,
            self.normal_smoothness,
            self.carve,
        )
        if min(*weights, self.pixel_target) < 0:
            raise ValueError("regulariser weights must be >= 0")
        if not 0 <= self.sparsity_until <= 1 or not 0 <= self.carve_until <= 1:
            raise ValueError("sparsity_until and carve_until must lie in [0, 1]")
        if not 0 < self.carve_tolerance < 1:
            raise ValueError("carve_tolerance must lie in (0, 1)")
        if self.normal_smoothness_step <= 0:
            raise ValueError("normal_smoothness_step must be > 0")
        if self.eikonal_points < 1:
            raise ValueError("eikonal_points must be >= 1")


@dataclass
class TrainConfig:
    """The optimisation loop."""

    steps: int = 800
    """Optimisation steps."""
    batch_size: int = 1
    """Renders per step (of each particle)."""
    particles: int = 1
    """Independent 3D models optimised together (ProlificDreamer's n); with VSD they share one LoRA. Particle 0
    is exported to the run folder, particle i to ``particle-i/``."""
    resolution: int = 64
    """Training render size in pixels (renders are resized to the prior's resolution)."""
    high_resolution: int = 0
    """Render size from step ``high_resolution_from``·steps on (ProlificDreamer's 64 → 512 with a 512-pixel
    prior); 0 keeps ``resolution`` throughout."""
    high_resolution_from: float = 0.5
    """Fraction of the steps after which ``high_resolution`` applies."""
    checkpoint_every: int = 200
    """Steps between checkpoints (one is always written at the end)."""
    validate_every: int = 200
    """Steps between validation renders; 0 disables them."""
    live_view_every_s: float = 0.0
    """Seconds between live views at least (``validation/live.png``: one view, albedo beside shaded, handed to the
    progress callback as its preview) for someone watching the run, the studio; 0 writes none. A slow view spaces
    them further: they take at most 5% of the run (``text3d.previews.LIVE_VIEW_SHARE``)."""
    log_every: int = 10
    """Steps between points of the loss curve in metrics.json."""

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError(f"steps must be > 0, got {self.steps}")
        if self.particles < 1:
            raise ValueError(f"particles must be >= 1, got {self.particles}")
        if self.batch_size < 1 or self.resolution < 8 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("batch_size >= 1, resolution >= 8, checkpoint_every >= 1 and log_every >= 1 are required")
        if self.validate_every < 0 or self.live_view_every_s < 0:
            raise ValueError("validate_every and live_view_every_s must be >= 0")
        if self.high_resolution != 0 and self.high_resolution < 8:
            raise ValueError("high_resolution must be 0 (off) or >= 8")
        if not 0 <= self.high_resolution_from <= 1:
            raise ValueError("high_resolution_from must lie in [0, 1]")

    def resolution_at(self, step: int) -> int:
        """Render size at ``step``."""
        if self.high_resolution and step >= self.high_resolution_from * self.steps:
            return self.high_resolution
        return self.resolution


@dataclass
class RefineConfig:
    """The refine stage (Magic3D): a DMTet mesh started from the NeRF, refined by the same guidance, textured."""

    enabled: bool = False
    """Run this stage after the NeRF stage in the same command (``text3d refine RUN_DIR`` runs it regardless)."""
    steps: int = 300
    """Optimisation steps of the refine stage."""
    resolution: int = 128
    """Render size in pixels (rasterizing is cheap, so higher than stage 1; renders are resized to the prior's, so
    twice its size supersamples the edges)."""
    t_min: float = 0.02
    """Smallest timestep (fraction) of the guidance in this stage."""
    t_max: float = 0.5
    """Largest timestep (fraction): a narrower range than stage 1's, for detail rather than layout."""
    threshold: float | None = None
    """Density of the initial surface; null: the NeRF's automatic export threshold."""
    normal_consistency: float = 50.0
    """Weight of the mean 1 − cos between neighbouring face normals: SDS noise roughens the surface, and weaker
    smoothing (with a weaker Laplacian) shreds it."""
    laplacian: float = 1000.0
    """Weight of the mean squared uniform Laplacian of the vertices (world units²)."""
    dmtet: DMTetConfig = dataclasses.field(default_factory=lambda: DMTetConfig(grid_resolution=48))
    rasterizer: RasterizerConfig = dataclasses.field(default_factory=RasterizerConfig)
    optim: OptimConfig = dataclasses.field(default_factory=lambda: OptimConfig(lr_grid=5e-3, lr_mlp=1e-3))
    """Learning rates: grid and MLP rates apply to both the SDF field and the texture field."""

    def __post_init__(self):
        if self.steps <= 0 or self.resolution < 8:
            raise ValueError("refine steps must be > 0 and resolution >= 8")
        if not 0 <= self.t_min < self.t_max <= 1:
            raise ValueError("refine timesteps need 0 <= t_min < t_max <= 1")
        if self.threshold is not None and self.threshold <= 0:
            raise ValueError("refine threshold must be > 0 (or null for the automatic one)")
        if self.normal_consistency < 0 or self.laplacian < 0:
            raise ValueError("refine regulariser weights must be >= 0")


@dataclass
class GaussianOptimConfig:
    """Adam with a learning rate per Gaussian parameter (DreamGaussian's rates)."""

    lr_means: float = 1e-2
    """Means (world units) at the start; the rate falls exponentially to ``lr_means_final``."""
    lr_means_final: float = 2e-4
    """Means at ``lr_means_until`` and after."""
    lr_means_until: float = 0.6
    """Share of the run (0–1) over which the means' rate falls."""
    lr_scales: float = 5e-3
    """Log standard deviations."""
    lr_quaternions: float = 5e-3
    lr_opacities: float = 5e-2
    """Opacity logits."""
    lr_colours: float = 1e-2
    """Albedo logits."""
    lr_background: float = 1e-3
    """The background MLP (if any)."""
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-15

    def __post_init__(self):
        rates = (self.lr_means, self.lr_means_final, self.lr_scales, self.lr_quaternions, self.lr_opacities)
        if min(*rates, self.lr_colours, self.lr_background) < 0 or self.eps <= 0:
            raise ValueError("gaussian learning rates must be >= 0 and eps > 0")
        if not 0 < self.lr_means_until <= 1:
            raise ValueError("lr_means_until must lie in (0, 1]")

    def means_rate(self, progress: float) -> float:
        """The means' learning rate at ``progress`` (0–1) through the run: log-linear from ``lr_means`` to
        ``lr_means_final``."""
        share = min(progress / self.lr_means_until, 1.0)
        if self.lr_means == 0 or self.lr_means_final == 0:
            return self.lr_means * (1 - share) + self.lr_means_final * share
        return self.lr_means ** (1 - share) * self.lr_means_final**share


@dataclass
class GaussianSceneConfig:
    """Stage 1 as 3D Gaussians (``scene: gaussians``; DreamGaussian): the Gaussians, their splatting, their
    learning rates and the density of their exported surface."""

    model: GaussianConfig = dataclasses.field(default_factory=GaussianConfig)
    splatting: SplattingConfig = dataclasses.field(default_factory=SplattingConfig)
    optim: GaussianOptimConfig = dataclasses.field(default_factory=GaussianOptimConfig)
    surface_density: float | None = None
    """Density Σ opacity · Gaussian of the exported surface, when ``export.threshold`` is null; null: the density
    whose level set best matches the silhouettes of the Gaussians' renders (text3d/gaussians.py,
    ``silhouette_threshold``). DreamGaussian's fixed 1 lies above a fog of faint Gaussians that renders opaque,
    and breaks the surface into pieces."""

    def __post_init__(self):
        if self.surface_density is not None and self.surface_density <= 0:
            raise ValueError("gaussians.surface_density must be > 0")


@dataclass
class Text3DConfig:
    """A whole text3d run."""

    prompt: str = ""
    """What to make."""
    seed: int = 0
    """Seed of everything random in the run, in [0, 2**32) (:data:`dreamlift.runtime.SEED_LIMIT`)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` picks CUDA when available."""
    prior: PriorConfig = dataclasses.field(default_factory=PriorConfig)
    guidance: GuidanceConfig = dataclasses.field(default_factory=GuidanceConfig)
    camera: CameraConfig = dataclasses.field(default_factory=CameraConfig)
    field: FieldConfig = dataclasses.field(default_factory=FieldConfig)
    renderer: VolumeRendererConfig = dataclasses.field(default_factory=VolumeRendererConfig)
    background: BackgroundConfig = dataclasses.field(default_factory=BackgroundConfig)
    shading: ShadingConfig = dataclasses.field(default_factory=ShadingConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    regularisers: RegularisersConfig = dataclasses.field(default_factory=RegularisersConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    refine: RefineConfig = dataclasses.field(default_factory=RefineConfig)
    scene: Literal["nerf", "gaussians"] = "nerf"
    """What stage 1 optimises: ``nerf``, a radiance field (``field``, ``renderer``, ``optim``, ``regularisers``);
    ``gaussians``, 3D Gaussians (the ``gaussians`` section). Both read the rest."""
    gaussians: GaussianSceneConfig = dataclasses.field(default_factory=GaussianSceneConfig)
    reference: ReferenceConfig = dataclasses.field(default_factory=ReferenceConfig)
    """Image-to-3D: a picture the model must show from one camera (``text3d --image``; text3d/reference.py)."""
    redraw_fit: RedrawFitConfig = dataclasses.field(default_factory=RedrawFitConfig)
    """Stage 1 held to the prior's redrawings of its own renders from fixed cameras (text3d/redraw_fit.py)."""

    def __post_init__(self):
        check_seed(self.seed)


def read_run_config(run_dir: Path, overrides: list[str] = (), values: dict | None = None) -> Text3DConfig:
    """The config saved in a run folder, with optional overrides (e.g. a larger ``train.steps``), as load_config."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a text3d run folder (no config.yaml)")
    return load_config(Text3DConfig, str(path), overrides, values)
