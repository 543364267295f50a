"""text3d: optimise a NeRF with score distillation from a frozen prior, then export a mesh and a turntable.

Run folder layout (everything written atomically):
    config.yaml          the resolved config, prompt and seed included (a run is reproducible from it)
    checkpoints/last.pt  scene, optimiser, random states and metrics so far (every N steps and at the end)
    validation/*.png     four views (front, side, back, side) of each particle every N steps
    mesh.glb|obj|ply     the exported mesh with vertex colours (y-up)
    turntable.mp4        a 360° orbit
    particle-i/          mesh and turntable of particle i > 0, when train.particles > 1
    metrics.json         loss curve, timings, export statistics
    refine/              the mesh stage (refine.enabled, or `text3d refine`): the same layout, holding the DMTet
                         mesh with a baked texture (mesh.glb, mesh.obj + mesh.mtl + texture.png, mesh.ply)

Stage 1 optimises a NeRF. Stage 2 (Magic3D's coarse to fine) starts a DMTet mesh from it — its SDF fitted to
the NeRF's density at the export threshold, its texture field a copy of the NeRF's field — and refines both with
the same guidance at a higher render resolution and a narrower timestep range, rasterized instead of
ray-marched, with normal-consistency and Laplacian regularisers on the mesh.
"""

from __future__ import annotations

import json
import random
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import imageio.v3 as iio
import numpy as np
import torch
from tqdm import tqdm

from dreamlift.config import dump_yaml, load_config
from dreamlift.errors import UsageError
from dreamlift.guidance import make_guidance
from dreamlift.guidance.base import GuidanceConfig
from dreamlift.outputs import atomic_path, save_torch, write_text
from dreamlift.pipelines.export import ExportConfig, auto_threshold, scene_mesh, render_turntable, write_meshes, write_video
from dreamlift.priors.diffusion import DiffusionPrior, PriorConfig
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.renderers.background import BackgroundConfig
from dreamlift.renderers.cameras import CameraConfig, sample_cameras, turntable_cameras
from dreamlift.renderers.dmtet import DMTetConfig
from dreamlift.renderers.fields import FieldConfig
from dreamlift.renderers.mesh import laplacian_smoothing, normal_consistency
from dreamlift.renderers.raster import RasterizerConfig
from dreamlift.renderers.scene import MeshScene, NeRFScene
from dreamlift.renderers.shading import fixed_light, sample_lights
from dreamlift.renderers.volume import RendererConfig
from dreamlift.timing import PhaseTimer


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

    orientation: float = 0.01
    """DreamFusion's penalty on visible normals facing away from the camera (shaded steps only)."""
    sparsity: float = 0.0
    """Mean opacity: discourages filling space."""
    opaque: float = 0.0
    """Entropy of the opacity: pushes each pixel to fully clear or fully covered."""

    def __post_init__(self):
        if min(self.orientation, self.sparsity, self.opaque) < 0:
            raise ValueError("regulariser weights must be >= 0")


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
    log_every: int = 10
    """Steps between points of the loss curve in metrics.json."""

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError(f"steps must be > 0, got {self.steps}")
        if self.particles < 1:
            raise ValueError(f"particles must be >= 1, got {self.particles}")
        if self.batch_size < 1 or self.resolution < 8 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("batch_size >= 1, resolution >= 8, checkpoint_every >= 1 and log_every >= 1 are required")
        if self.validate_every < 0:
            raise ValueError("validate_every must be >= 0")
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
    """The mesh stage (Magic3D): a DMTet mesh started from the NeRF, refined by the same guidance, textured."""

    enabled: bool = False
    """Run this stage after the NeRF stage in the same command (``text3d refine RUN_DIR`` runs it regardless)."""
    steps: int = 300
    """Optimisation steps of the mesh stage."""
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
    """Weight of the mean 1 − cos between neighbouring face normals. SDS noise roughens the surface: at 5 (and
    Laplacian 100) the refined cube of bench/mesh_stage.py came out shredded, at 50 (and 1000) solid."""
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
class Text3DConfig:
    """A whole text3d run."""

    prompt: str = ""
    """What to make."""
    seed: int = 0
    """Seed of everything random in the run."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` picks CUDA when available."""
    prior: PriorConfig = dataclasses.field(default_factory=PriorConfig)
    guidance: GuidanceConfig = dataclasses.field(default_factory=GuidanceConfig)
    camera: CameraConfig = dataclasses.field(default_factory=CameraConfig)
    field: FieldConfig = dataclasses.field(default_factory=FieldConfig)
    renderer: RendererConfig = dataclasses.field(default_factory=RendererConfig)
    background: BackgroundConfig = dataclasses.field(default_factory=BackgroundConfig)
    shading: ShadingConfig = dataclasses.field(default_factory=ShadingConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    regularisers: RegularisersConfig = dataclasses.field(default_factory=RegularisersConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    refine: RefineConfig = dataclasses.field(default_factory=RefineConfig)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def read_run_config(run_dir: Path, overrides: list[str] = (), values: dict | None = None) -> Text3DConfig:
    """The config saved in a run folder, with optional overrides (e.g. a larger ``train.steps``), as load_config."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a text3d run folder (no config.yaml)")
    return load_config(Text3DConfig, str(path), overrides, values)


def build_optimizer(scene: NeRFScene | MeshScene, config: OptimConfig) -> torch.optim.Adam:
    groups = scene.parameter_groups(config.lr_grid, config.lr_mlp, config.lr_background)
    return torch.optim.Adam(groups, betas=config.betas, eps=config.eps)


def particle_dir(run_dir: Path, particle: int) -> Path:
    """Where particle ``particle`` is exported: the run folder itself for particle 0, else ``particle-<i>/``."""
    return run_dir if particle == 0 else run_dir / f"particle-{particle}"


Stage = Literal["nerf", "mesh"]
"""Stage 1 optimises a NeRF, stage 2 (the refine stage) a DMTet mesh."""


def make_scene(stage: Stage, config: Text3DConfig, device: torch.device) -> NeRFScene | MeshScene:
    """An untrained scene of the stage, on ``device``."""
    if stage == "nerf":
        return NeRFScene(config.field, config.renderer, config.background, device).to(device)
    r = config.refine
    return MeshScene(config.field, r.dmtet, r.rasterizer, config.background, device).to(device)


def load_scenes(run_dir: Path, config: Text3DConfig, device: torch.device) -> list[NeRFScene | MeshScene]:
    """The scenes (one per particle) of a run folder's last checkpoint, of the stage that wrote it."""
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if not checkpoint.is_file():
        raise UsageError(f"{run_dir} has no checkpoint to export from (checkpoints/last.pt)")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    scenes = []
    for scene_state in state["scenes"]:
        scene = make_scene(state.get("stage", "nerf"), config, device)
        scene.load_state_dict(scene_state)
        scenes.append(scene)
    return scenes


def export_run(scene: NeRFScene | MeshScene, config: ExportConfig, run_dir: Path) -> dict:
    """Write the meshes and the turntable of ``scene`` into ``run_dir``; returns export statistics."""
    start = time.time()
    scene.eval()
    mesh, stats = scene_mesh(scene, config)
    if len(mesh.faces) == 0:
        tqdm.write("warning: the exported mesh is empty (nothing in the scene is solid)")
    write_meshes(mesh, run_dir, config.formats)
    if config.turntable_frames > 0:
        write_video(render_turntable(scene, config), run_dir / "turntable.mp4", config.turntable_fps)
    stats["seconds"] = round(time.time() - start, 2)
    return stats


def write_png(image: torch.Tensor, path: Path) -> None:
    """An image 3×H×W in [0, 1] as an 8-bit PNG, atomically."""
    pixels = (image.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, pixels, extension=".png")


def export_particles(scenes: list[NeRFScene | MeshScene], config: ExportConfig, run_dir: Path) -> dict:
    """Export each particle to its folder; returns the metrics entries: ``export`` (particle 0's statistics)
    and, with several particles, ``particle_exports`` (all of them)."""
    exports = [export_run(scene, config, particle_dir(run_dir, i)) for i, scene in enumerate(scenes)]
    return {"export": exports[0], **({"particle_exports": exports} if len(exports) > 1 else {})}


class TextTo3D:
    """Runs one stage of a text3d optimisation in a run folder; see the module docstring for what it writes.

    ``stage="mesh"`` is the refine stage: its scenes start from ``start_from`` (the stage-1 NeRF of each
    particle) unless the run resumes from its own checkpoint.
    """

    def __init__(
        self,
        config: Text3DConfig,
        prior: DiffusionPrior,
        run_dir: Path,
        device: torch.device,
        stage: Stage = "nerf",
        start_from: list[NeRFScene] | None = None,
    ):
        if stage == "mesh" and start_from is not None and len(start_from) != config.train.particles:
            raise ValueError(f"the mesh stage needs {config.train.particles} stage-1 scenes, got {len(start_from)}")
        self.config, self.prior, self.run_dir, self.device = config, prior, run_dir, device
        self.stage, self.start_from = stage, start_from
        seed_everything(config.seed)
        self.scenes = [make_scene(stage, config, device) for _ in range(config.train.particles)]
        optim = config.optim if stage == "nerf" else config.refine.optim
        self.optimizers = [build_optimizer(scene, optim) for scene in self.scenes]
        self.guidance = make_guidance(self.guidance_config(), prior)
        self.prompts = PromptEmbeddings(prior, config.prompt, config.guidance.negative_prompt, config.guidance.view_dependent)
        self.camera_generator = torch.Generator().manual_seed(config.seed)
        self.noise_generator = torch.Generator(device).manual_seed(config.seed + 1)
        self.step = 0
        self.metrics: dict = {"loss": [], "train_seconds": 0.0}
        self.timer = PhaseTimer(device)

    # --- what the stages differ in ----------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self.config.train.steps if self.stage == "nerf" else self.config.refine.steps

    def resolution_at(self, step: int) -> int:
        """Render size at ``step``."""
        return self.config.train.resolution_at(step) if self.stage == "nerf" else self.config.refine.resolution

    def guidance_config(self) -> GuidanceConfig:
        """The run's guidance; the mesh stage narrows its timestep range (no annealing)."""
        if self.stage == "nerf":
            return self.config.guidance
        r = self.config.refine
        return dataclasses.replace(self.config.guidance, t_min=r.t_min, t_max=r.t_max, t_max_final=r.t_max)

    def initialise_meshes(self) -> None:
        """Fit each mesh scene to its stage-1 NeRF at the surface threshold."""
        for scene, nerf in zip(self.scenes, self.start_from, strict=True):
            nerf.eval()
            threshold = self.config.refine.threshold or auto_threshold(nerf)
            error = scene.initialise_from(nerf, threshold, show_progress=True)
            with torch.no_grad():
                if len(scene.geometry()[1]) == 0:
                    raise UsageError(
                        f"the NeRF has no surface at density {threshold:.3g} on a {scene.geometry.config.grid_resolution}³ "
                        "grid, so there is no mesh to refine (set refine.threshold lower, or refine.dmtet.grid_resolution higher)"
                    )
            self.metrics.setdefault("initial_sdf", []).append({"threshold": threshold, "fit_mse": round(error, 6)})

    # --- checkpoints ------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def save_checkpoint(self) -> None:
        save_torch(
            self.checkpoint_path,
            {
                "step": self.step,
                "stage": self.stage,
                "scenes": [scene.state_dict() for scene in self.scenes],
                "optimizers": [optimizer.state_dict() for optimizer in self.optimizers],
                "camera_generator": self.camera_generator.get_state(),
                "noise_generator": self.noise_generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "metrics": self.metrics,
                "guidance": self.guidance.state_dict(),
            },
        )

    def load_checkpoint(self) -> None:
        if not self.checkpoint_path.is_file():
            raise UsageError(f"nothing to resume in {self.run_dir} (no checkpoints/last.pt)")
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        saved_stage = state.get("stage", "nerf")
        if saved_stage != self.stage:
            raise UsageError(f"{self.checkpoint_path} is a {saved_stage}-stage checkpoint, not a {self.stage}-stage one")
        for scene, optimizer, scene_state, optimizer_state in zip(
            self.scenes, self.optimizers, state["scenes"], state["optimizers"], strict=True
        ):
            scene.load_state_dict(scene_state)
            optimizer.load_state_dict(optimizer_state)
        self.camera_generator.set_state(state["camera_generator"])
        self.noise_generator.set_state(state["noise_generator"])
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step, self.metrics = state["step"], state["metrics"]
        if state.get("guidance"):
            self.guidance.load_state_dict(state["guidance"])

    # --- one step ---------------------------------------------------------------------------------------------
    def shading_for_step(self) -> str:
        c = self.config.shading
        if self.step < c.albedo_only_steps:
            return "albedo"
        u = torch.rand(1, generator=self.camera_generator).item()
        if u < c.lambertian_probability:
            return "lambertian"
        if u < c.lambertian_probability + c.textureless_probability:
            return "textureless"
        return "albedo"

    def train_step(self) -> dict[str, float]:
        """One optimisation step of every particle; returns its scalars."""
        c, timer = self.config, self.timer
        batch, size = c.train.batch_size, self.resolution_at(self.step)
        with timer("render"):
            cameras = sample_cameras(c.camera, batch * len(self.scenes), self.camera_generator).to(self.device)
            shading = self.shading_for_step()
            lights = sample_lights(cameras.positions, self.camera_generator) if shading != "albedo" else None
            outs = []
            for i, scene in enumerate(self.scenes):
                scene.train()
                scene.before_step(self.step)
                part = slice(i * batch, (i + 1) * batch)
                light = (lights[0][part], lights[1][part]) if lights is not None else None
                outs.append(
                    scene.render(
                        cameras[part], size, size, shading, light, stratified=True, generator=self.camera_generator
                    )
                )
        images = torch.cat([out.rgb for out in outs])
        guided = self.guidance(images, cameras, self.prompts, self.step / self.steps, self.noise_generator, timer)
        # The guidance loss is a mean over every particle's renders; times the particle count, each particle
        # gets the gradient it would get alone.
        loss = guided.loss * len(self.scenes) + sum(self.regularisation(out) for out in outs)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        with timer("backward"):
            loss.backward()
        with timer("optimiser"):
            for optimizer in self.optimizers:
                optimizer.step()
        self.step += 1
        samples = sum(out.samples for out in outs)
        return {"loss": loss.item(), "guidance": guided.loss.item(), "samples": samples, "shading": shading, **guided.diagnostics}

    def regularisation(self, out) -> torch.Tensor:
        """The weighted regularisers of one particle's render output: the mesh's smoothness in the mesh stage,
        the NeRF regularisers otherwise."""
        loss = torch.zeros((), device=self.device)
        if out.mesh is not None:
            vertices, faces = out.mesh
            refine = self.config.refine
            if refine.normal_consistency > 0:
                loss = loss + refine.normal_consistency * normal_consistency(vertices, faces)
            if refine.laplacian > 0:
                loss = loss + refine.laplacian * laplacian_smoothing(vertices, faces)
            return loss
        r = self.config.regularisers
        if out.orientation is not None and r.orientation > 0:
            loss = loss + r.orientation * out.orientation
        if r.sparsity > 0:
            loss = loss + r.sparsity * out.opacity.mean()
        if r.opaque > 0:
            o = out.opacity.clamp(1e-5, 1 - 1e-5)
            loss = loss + r.opaque * (-(o * o.log() + (1 - o) * (1 - o).log())).mean()
        return loss

    # --- validation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> Path:
        """Four views of each particle (albedo above, shaded below) as validation/step_N.png, and what the guidance
        sees of particle 0's albedo views as validation/guidance_N.png (rows: render, noised at t = T/2, one-step
        denoised by each prediction the guidance weighs — the prior's, and for VSD the LoRA's)."""
        e = self.config.export
        cameras = turntable_cameras(4, e.turntable_elevation, e.turntable_distance, e.turntable_fov).to(self.device)
        size = self.resolution_at(self.step)
        rows, albedo_views = [], None
        for scene in self.scenes:
            scene.eval()
            albedo = scene.render(cameras, size, size).rgb
            shaded = scene.render(cameras, size, size, "lambertian", fixed_light(4, self.device)).rgb
            albedo_views = albedo if albedo_views is None else albedo_views
            rows += [torch.cat(list(albedo), dim=2), torch.cat(list(shaded), dim=2)]  # each 3×H×4W
        path = self.run_dir / "validation" / f"step_{self.step:06d}.png"
        write_png(torch.cat(rows, dim=1), path)
        preview = self.guidance.preview(albedo_views, cameras, self.prompts, self.step / self.steps, seed=self.config.seed)
        write_png(torch.cat([torch.cat(list(panel), dim=2) for panel in preview], dim=1), self.run_dir / "validation" / f"guidance_{self.step:06d}.png")
        return path

    # --- the run ----------------------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict:
        """Optimise (from the last checkpoint when resuming), export, and write metrics.json; returns the metrics.
        Resuming a stage that has finished and exported does nothing and returns its metrics."""
        c = self.config
        metrics_path = self.run_dir / "metrics.json"
        if resume:
            self.load_checkpoint()
            if self.step >= self.steps and metrics_path.is_file():
                self.guidance.close()
                return json.loads(metrics_path.read_text())
        elif self.stage == "mesh":
            self.initialise_meshes()
        write_text(self.run_dir / "config.yaml", dump_yaml(c))
        desc = "text3d" if self.stage == "nerf" else "text3d mesh"
        progress = tqdm(total=self.steps, initial=self.step, desc=desc, unit="step", dynamic_ncols=True)
        start = time.time()
        try:
            while self.step < self.steps:
                scalars = self.train_step()
                progress.update(1)
                if self.step % c.train.log_every == 0 or self.step == self.steps:
                    self.metrics["loss"].append([self.step, round(scalars["loss"], 6)])
                    progress.set_postfix(loss=f"{scalars['loss']:.3g}", t=f"{scalars['t']:.0f}")
                if c.train.validate_every and self.step % c.train.validate_every == 0:
                    self.validate()
                if self.step % c.train.checkpoint_every == 0 or self.step == self.steps:
                    self.metrics["train_seconds"] += time.time() - start
                    start = time.time()
                    self.save_checkpoint()
        except KeyboardInterrupt:
            self.metrics["train_seconds"] += time.time() - start
            self.save_checkpoint()
            raise
        finally:
            progress.close()
            self.guidance.close()
        self.metrics["train_seconds"] = round(self.metrics["train_seconds"], 2)
        self.metrics["seconds_per_step"] = round(self.metrics["train_seconds"] / max(1, self.steps), 4)
        self.metrics["phase_seconds"] = {phase: round(s, 5) for phase, s in self.timer.means().items()}
        self.metrics.update(export_particles(self.scenes, c.export, self.run_dir))
        self.metrics.update(prompt=c.prompt, seed=c.seed, device=str(self.device), steps=self.steps, stage=self.stage)
        write_text(metrics_path, json.dumps(self.metrics, indent=2))
        return self.metrics


def refine_dir(run_dir: Path) -> Path:
    """Where the mesh stage of a run is written."""
    return run_dir / "refine"


def run_stages(config: Text3DConfig, prior: DiffusionPrior, run_dir: Path, device: torch.device, resume: bool) -> dict:
    """The NeRF stage into ``run_dir`` and, with ``refine.enabled``, the mesh stage into ``run_dir/refine``; each
    resumes from its own checkpoint when ``resume`` is set. Returns the last stage's metrics."""
    metrics = TextTo3D(config, prior, run_dir, device).run(resume=resume)
    if not config.refine.enabled:
        return metrics
    return refine_run(config, prior, run_dir, refine_dir(run_dir), device, resume)


def refine_run(
    config: Text3DConfig, prior: DiffusionPrior, nerf_dir: Path, out_dir: Path, device: torch.device, resume: bool
) -> dict:
    """The mesh stage from the NeRF of ``nerf_dir`` into ``out_dir``, resumed there when ``resume`` is set and
    it has a checkpoint."""
    resume = resume and (out_dir / "checkpoints" / "last.pt").is_file()
    start_from = None if resume else load_scenes(nerf_dir, config, device)
    if start_from is not None and not all(isinstance(scene, NeRFScene) for scene in start_from):
        raise UsageError(f"{nerf_dir} holds a mesh-stage run; refine starts from a NeRF run")
    return TextTo3D(config, prior, out_dir, device, stage="mesh", start_from=start_from).run(resume=resume)
