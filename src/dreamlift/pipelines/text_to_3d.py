"""text3d: optimise a NeRF with score distillation from a frozen prior, then export a mesh and a turntable.

Run folder layout (everything written atomically):
    config.yaml          the resolved config, prompt and seed included (a run is reproducible from it)
    checkpoints/last.pt  scene, optimiser, random states and metrics so far (every N steps and at the end)
    validation/*.png     four views (front, side, back, side) of each particle every N steps
    mesh.glb|obj|ply     the exported mesh with vertex colours (y-up)
    turntable.mp4        a 360° orbit
    particle-i/          mesh and turntable of particle i > 0, when train.particles > 1
    metrics.json         loss curve, timings, export statistics
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
from dreamlift.pipelines.export import ExportConfig, extract_mesh, render_turntable, write_meshes, write_video
from dreamlift.priors.diffusion import DiffusionPrior, PriorConfig
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.renderers.background import BackgroundConfig
from dreamlift.renderers.cameras import CameraConfig, sample_cameras, turntable_cameras
from dreamlift.renderers.fields import FieldConfig
from dreamlift.renderers.scene import NeRFScene
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


def build_optimizer(scene: NeRFScene, config: OptimConfig) -> torch.optim.Adam:
    groups = [
        {"params": list(scene.field.encoding.parameters()), "lr": config.lr_grid, "name": "grid"},
        {"params": list(scene.field.mlp.parameters()), "lr": config.lr_mlp, "name": "mlp"},
    ]
    background = list(scene.background.parameters())
    if background:
        groups.append({"params": background, "lr": config.lr_background, "name": "background"})
    return torch.optim.Adam(groups, betas=config.betas, eps=config.eps)


def particle_dir(run_dir: Path, particle: int) -> Path:
    """Where particle ``particle`` is exported: the run folder itself for particle 0, else ``particle-<i>/``."""
    return run_dir if particle == 0 else run_dir / f"particle-{particle}"


def load_scenes(run_dir: Path, config: Text3DConfig, device: torch.device) -> list[NeRFScene]:
    """The scenes (one per particle) of a run folder's last checkpoint, for export without the prior."""
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if not checkpoint.is_file():
        raise UsageError(f"{run_dir} has no checkpoint to export from (checkpoints/last.pt)")
    scenes = []
    for state in torch.load(checkpoint, map_location="cpu", weights_only=False)["scenes"]:
        scene = NeRFScene(config.field, config.renderer, config.background, device).to(device)
        scene.load_state_dict(state)
        scenes.append(scene)
    return scenes


def export_run(scene: NeRFScene, config: ExportConfig, run_dir: Path) -> dict:
    """Write the meshes and the turntable of ``scene`` into ``run_dir``; returns export statistics."""
    start = time.time()
    scene.eval()
    mesh, threshold = extract_mesh(scene, config)
    stats = {"threshold": threshold, "vertices": len(mesh.vertices), "faces": len(mesh.faces)}
    if len(mesh.faces) == 0:
        tqdm.write(f"warning: the density never exceeds the surface threshold {threshold:.3g}; the mesh is empty")
    stats["watertight"] = bool(mesh.is_watertight) if len(mesh.faces) else False
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


def export_particles(scenes: list[NeRFScene], config: ExportConfig, run_dir: Path) -> dict:
    """Export each particle to its folder; returns the metrics entries: ``export`` (particle 0's statistics)
    and, with several particles, ``particle_exports`` (all of them)."""
    exports = [export_run(scene, config, particle_dir(run_dir, i)) for i, scene in enumerate(scenes)]
    return {"export": exports[0], **({"particle_exports": exports} if len(exports) > 1 else {})}


class TextTo3D:
    """Runs one text3d optimisation in a run folder; see the module docstring for what it writes."""

    def __init__(self, config: Text3DConfig, prior: DiffusionPrior, run_dir: Path, device: torch.device):
        self.config, self.prior, self.run_dir, self.device = config, prior, run_dir, device
        seed_everything(config.seed)
        self.scenes = [
            NeRFScene(config.field, config.renderer, config.background, device).to(device) for _ in range(config.train.particles)
        ]
        self.optimizers = [build_optimizer(scene, config.optim) for scene in self.scenes]
        self.guidance = make_guidance(config.guidance, prior)
        self.prompts = PromptEmbeddings(prior, config.prompt, config.guidance.negative_prompt, config.guidance.view_dependent)
        self.camera_generator = torch.Generator().manual_seed(config.seed)
        self.noise_generator = torch.Generator(device).manual_seed(config.seed + 1)
        self.step = 0
        self.metrics: dict = {"loss": [], "train_seconds": 0.0}
        self.timer = PhaseTimer(device)

    # --- checkpoints ------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def save_checkpoint(self) -> None:
        save_torch(
            self.checkpoint_path,
            {
                "step": self.step,
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
        batch, size = c.train.batch_size, c.train.resolution_at(self.step)
        with timer("render"):
            cameras = sample_cameras(c.camera, batch * len(self.scenes), self.camera_generator).to(self.device)
            shading = self.shading_for_step()
            lights = sample_lights(cameras.positions, self.camera_generator) if shading != "albedo" else None
            outs = []
            for i, scene in enumerate(self.scenes):
                scene.train()
                scene.update_occupancy(self.step)
                part = slice(i * batch, (i + 1) * batch)
                light = (lights[0][part], lights[1][part]) if lights is not None else None
                outs.append(
                    scene.render(
                        cameras[part], size, size, shading, light, stratified=True, generator=self.camera_generator
                    )
                )
        images = torch.cat([out.rgb for out in outs])
        guided = self.guidance(images, cameras, self.prompts, self.step / c.train.steps, self.noise_generator, timer)
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
        """The weighted regularisers of one particle's render output."""
        r = self.config.regularisers
        loss = torch.zeros((), device=self.device)
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
        size = self.config.train.resolution_at(self.step)
        rows, albedo_views = [], None
        for scene in self.scenes:
            scene.eval()
            albedo = scene.render(cameras, size, size).rgb
            shaded = scene.render(cameras, size, size, "lambertian", fixed_light(4, self.device)).rgb
            albedo_views = albedo if albedo_views is None else albedo_views
            rows += [torch.cat(list(albedo), dim=2), torch.cat(list(shaded), dim=2)]  # each 3×H×4W
        path = self.run_dir / "validation" / f"step_{self.step:06d}.png"
        write_png(torch.cat(rows, dim=1), path)
        preview = self.guidance.preview(albedo_views, cameras, self.prompts, self.step / self.config.train.steps, seed=self.config.seed)
        write_png(torch.cat([torch.cat(list(panel), dim=2) for panel in preview], dim=1), self.run_dir / "validation" / f"guidance_{self.step:06d}.png")
        return path

    # --- the run ----------------------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict:
        """Optimise (from the last checkpoint when resuming), export, and write metrics.json; returns the metrics."""
        c = self.config
        if resume:
            self.load_checkpoint()
        write_text(self.run_dir / "config.yaml", dump_yaml(c))
        progress = tqdm(total=c.train.steps, initial=self.step, desc="text3d", unit="step", dynamic_ncols=True)
        start = time.time()
        try:
            while self.step < c.train.steps:
                scalars = self.train_step()
                progress.update(1)
                if self.step % c.train.log_every == 0 or self.step == c.train.steps:
                    self.metrics["loss"].append([self.step, round(scalars["loss"], 6)])
                    progress.set_postfix(loss=f"{scalars['loss']:.3g}", t=f"{scalars['t']:.0f}")
                if c.train.validate_every and self.step % c.train.validate_every == 0:
                    self.validate()
                if self.step % c.train.checkpoint_every == 0 or self.step == c.train.steps:
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
        self.metrics["seconds_per_step"] = round(self.metrics["train_seconds"] / max(1, c.train.steps), 4)
        self.metrics["phase_seconds"] = {phase: round(s, 5) for phase, s in self.timer.means().items()}
        self.metrics.update(export_particles(self.scenes, c.export, self.run_dir))
        self.metrics.update(prompt=c.prompt, seed=c.seed, device=str(self.device), steps=c.train.steps)
        write_text(self.run_dir / "metrics.json", json.dumps(self.metrics, indent=2))
        return self.metrics
