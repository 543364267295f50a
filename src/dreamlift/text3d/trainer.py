"""The text3d trainer: runs one stage (see :mod:`dreamlift.text3d.stages`) of a run in a run folder.

Each step renders every particle from random cameras (the shading drawn per step, as DreamFusion does), turns
the prior's score on the renders into a loss with the guidance, adds the stage's regularisers and takes an
optimiser step. Checkpoints hold the scenes, optimisers, guidance state and random states, so an interrupted
stage resumes where it stopped; at the end the stage exports its scenes (:mod:`dreamlift.text3d.runs`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from dreamlift.config import dump_yaml
from dreamlift.errors import UsageError
from dreamlift.guidance import make_guidance
from dreamlift.io import read_json_object, remove_leftovers, write_png, write_text
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.progress import Progress, ProgressCallback
from dreamlift.render.output import RenderOutput
from dreamlift.render.shading import sample_lights
from dreamlift.runtime import seed_everything
from dreamlift.scene.cameras import Cameras, sample_cameras, turntable_cameras
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.export import METRICS_FILE, export_particles
from dreamlift.text3d.previews import LIVE_VIEW_SHARE, albedo_and_shaded, side_by_side, write_live_view
from dreamlift.text3d.redraw import PriorRedraw
from dreamlift.text3d.redraw_fit import RedrawFit
from dreamlift.text3d.reference import ReferenceView, draw_picture
from dreamlift.text3d.scene_kinds import first_stage
from dreamlift.text3d.scenes import Scene
from dreamlift.text3d.stages import Stage
from dreamlift.timing import PhaseTimer
from dreamlift.training.checkpoints import read_checkpoint, restore_checkpoint, save_checkpoint


class TextTo3D:
    """Runs one stage of a text3d optimisation in a run folder (see :mod:`dreamlift.text3d.runs` for its layout).

    The refine stage's scenes start from ``start_from`` (the stage-1 NeRF of each particle) unless the run resumes
    from its own checkpoint.
    """

    def __init__(
        self,
        config: Text3DConfig,
        prior: DiffusionPrior,
        run_dir: Path,
        device: torch.device,
        stage: Stage | None = None,
        start_from: list[Scene] | None = None,
    ):
        self.config, self.prior, self.run_dir, self.device = config, prior, run_dir, device
        self.start_from = start_from
        seed_everything(config.seed)
        self.prompts = PromptEmbeddings(
            prior, config.prompt, config.guidance.negative_prompt, config.guidance.view_dependent
        )
        self.stage = stage or first_stage(config)
        guidance_config = self.stage.guidance_config()
        self.scenes = [self.stage.make_scene(device) for _ in range(config.train.particles)]
        self.optimizers = [self.stage.make_optimizer(scene) for scene in self.scenes]
        self.camera_generator = torch.Generator().manual_seed(config.seed)
        self.noise_generator = torch.Generator(device).manual_seed(config.seed + 1)
        self.reference: ReferenceView | None = None  # set by run() for an image-to-3D run
        fit = config.redraw_fit
        held = fit.rounds and self.stage.takes_reference_views
        self.redraw_fit = RedrawFit(fit, prior, self.prompts, config.seed) if held else None
        self.step = 0
        self.metrics: dict = {"loss": [], "train_seconds": 0.0}
        self.timer = PhaseTimer(device)
        # Last: VSD changes the prior when it is made, and nothing may fail between that and run()'s `with`.
        self.guidance = make_guidance(guidance_config, prior)

    @property
    def steps(self) -> int:
        return self.stage.steps

    # --- checkpoints ------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def _checkpointed(self) -> tuple[dict, dict]:
        objects = {"scenes": self.scenes, "optimizers": self.optimizers, "guidance": self.guidance}
        if self.redraw_fit is not None:
            objects["redraw_fit"] = self.redraw_fit
        generators = {"camera_generator": self.camera_generator, "noise_generator": self.noise_generator}
        return objects, generators

    def save_checkpoint(self) -> None:
        objects, generators = self._checkpointed()
        save_checkpoint(
            self.checkpoint_path,
            objects,
            generators,
            self.device,
            step=self.step,
            stage=self.stage.name,
            metrics=self.metrics,
        )

    def load_checkpoint(self) -> None:
        state = read_checkpoint(self.checkpoint_path, {"step": int, "metrics": dict, "stage": str})
        if state["stage"] not in (self.stage.name, *self.stage.former_names):
            raise UsageError(
                f"{self.checkpoint_path} is a {state['stage']}-stage checkpoint, not a {self.stage.name}-stage one"
            )
        metrics = state["metrics"]
        if not isinstance(metrics.get("loss"), list) or not isinstance(metrics.get("train_seconds"), (int, float)):
            raise UsageError(f"{self.checkpoint_path} is not a dreamlift checkpoint: its metrics are not a run's")
        objects, generators = self._checkpointed()
        restore_checkpoint(self.checkpoint_path, state, objects, generators, self.device)
        self.step, self.metrics = state["step"], metrics

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
        batch, size = c.train.batch_size, self.stage.resolution_at(self.step)
        progress = self.step / self.steps
        if self.redraw_fit is not None and self.redraw_fit.is_round(self.step, self.steps):
            with timer("redraw"):
                self.redraw_fit.redraw(self.scenes, self.step, self.run_dir / "validation")
        with timer("render"):
            cameras = sample_cameras(c.camera, batch * len(self.scenes), self.camera_generator).to(self.device)
            shading = self.shading_for_step()
            lights = sample_lights(cameras.positions, self.camera_generator) if shading != "albedo" else None
            outs = []
            for i, scene in enumerate(self.scenes):
                scene.train()
                scene.before_step(self.step, progress)
                part = slice(i * batch, (i + 1) * batch)
                light = (lights[0][part], lights[1][part]) if lights is not None else None
                outs.append(
                    scene.render(
                        cameras[part], size, size, shading, light, stratified=True, generator=self.camera_generator
                    )
                )
        images = torch.cat([out.rgb for out in outs])
        denoise = self.stage.wants_denoised(progress, shading)
        guided = self.guidance(images, cameras, self.prompts, progress, self.noise_generator, timer, denoise)
        # The guidance loss is a mean over every particle's renders; times the particle count, each particle
        # gets the gradient it would get alone.
        denoised = guided.denoised.split(batch) if denoise else [None] * len(self.scenes)  # per particle
        regularisation = sum(
            self.stage.regularisation(scene, out, progress, self.camera_generator, particle_denoised)
            for scene, out, particle_denoised in zip(self.scenes, outs, denoised)
        )
        reference = redrawn = torch.zeros((), device=self.device)
        if self.reference is not None:
            reference = self.held_view_loss(self.reference.camera, size, lambda particle, out: self.reference.loss(out))
        if self.redraw_fit is not None and self.redraw_fit.holds(self.step):
            camera = self.redraw_fit.camera(self.step)
            fit_size = c.redraw_fit.resolution
            redrawn = self.held_view_loss(camera, fit_size, partial(self.redraw_fit.loss, step=self.step))
        loss = guided.loss * len(self.scenes) + regularisation + reference + redrawn
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        with timer("backward"):
            loss.backward()
        with timer("optimiser"):
            for optimizer in self.optimizers:
                optimizer.step()
        self.step += 1
        for particle, (scene, optimizer, out) in enumerate(zip(self.scenes, self.optimizers, outs, strict=True)):
            record = self.stage.after_step(scene, optimizer, out, self.step, self.camera_generator)
            if record is not None:
                self.metrics.setdefault("scene_updates", []).append({"particle": particle, **record})
        samples = sum(out.samples for out in outs)
        return {
            "loss": loss.item(),
            "guidance": guided.loss.item(),
            "samples": samples,
            "shading": shading,
            "reference": reference.item(),
            "redraw_fit": redrawn.item(),
            **guided.diagnostics,
        }

    def held_view_loss(
        self, camera: Cameras, size: int, loss: Callable[[int, RenderOutput], torch.Tensor]
    ) -> torch.Tensor:
        """The sum over particles of ``loss(particle, render)`` of each particle's albedo render from ``camera`` (a
        batch of one) at size×size pixels: a reference view's, or a redraw-and-fit view's."""
        with self.timer("render"):
            outs = [
                scene.render(camera, size, size, stratified=True, generator=self.camera_generator)
                for scene in self.scenes
            ]
        return sum(loss(particle, out) for particle, out in enumerate(outs))

    # --- validation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> Path:
        """Four views of each particle (albedo above, shaded below) as validation/step_N.png, and what the guidance
        sees of particle 0's albedo views as validation/guidance_N.png (rows: render, noised at t = T/2, one-step
        denoised by each prediction the guidance weighs — the prior's, and for VSD the LoRA's)."""
        e = self.config.export
        cameras = turntable_cameras(4, e.turntable_elevation, e.turntable_distance, e.turntable_fov).to(self.device)
        size = self.stage.resolution_at(self.step)
        views = [albedo_and_shaded(scene, cameras, size) for scene in self.scenes]
        rows = [side_by_side(row) for albedo, shaded in views for row in (albedo, shaded)]
        albedo_views = views[0][0]
        path = self.run_dir / "validation" / f"step_{self.step:06d}.png"
        write_png(torch.cat(rows, dim=1), path)
        preview = self.guidance.preview(
            albedo_views, cameras, self.prompts, self.step / self.steps, seed=self.config.seed
        )
        panels = torch.cat([torch.cat(list(panel), dim=2) for panel in preview], dim=1)
        write_png(panels, self.run_dir / "validation" / f"guidance_{self.step:06d}.png")
        return path

    # --- the run ----------------------------------------------------------------------------------------------
    def run(self, resume: bool = False, callback: ProgressCallback | None = None) -> dict:
        """Optimise (from the last checkpoint when resuming), export, and write metrics.json; returns the metrics.
        Resuming a stage that has finished and exported does nothing and returns its metrics; resuming one that
        stopped before its first checkpoint starts it over from step 0. What a killed writer left in the folder
        (temporary files, a half-moved export) is removed first.

        The guidance is attached to the prior (VSD's LoRA) for this call alone: whatever ends it, a refusal before
        the first step included, the prior is left as it was. ``callback`` hears of every step and of the
        export."""
        metrics_path = self.run_dir / METRICS_FILE
        remove_leftovers(self.run_dir, ("checkpoints", "validation"))
        resuming = resume and self.checkpoint_path.is_file()
        reference = self.config.reference
        if reference.enabled and self.stage.takes_reference_views:
            draw = partial(draw_picture, self.prior, self.config.prompt, reference, self.config.seed)
            self.reference = ReferenceView.for_run(reference, self.run_dir, self.device, resuming, draw)
        with self.guidance:
            if resuming:
                self.load_checkpoint()
                if self.step >= self.steps and metrics_path.is_file():
                    return read_json_object(metrics_path)
            else:
                records = self.stage.start(self.scenes, self.start_from)
                if records:
                    self.metrics["initial_sdf"] = records
            write_text(self.run_dir / "config.yaml", dump_yaml(self.config))
            self.optimise(callback)
        if callback is not None:
            callback(Progress("export", 0, 1, title="export"))
        metrics = self.finish()
        if callback is not None:
            callback(Progress("export", 1, 1, title="export"))
        return metrics

    def optimise(self, callback: ProgressCallback | None = None) -> None:
        """Steps up to the stage's count, with logging, validation and checkpoints (one on Ctrl-C too); each step
        done is told to ``callback``."""
        c, train = self.config, self.config.train
        where = f" from step {self.step}" if self.step else ""
        tqdm.write(
            f'{self.stage.progress_label}: "{c.prompt}" on {self.device}, seed {c.seed}, {self.steps} steps{where} '
            f"→ {self.run_dir}",
            file=sys.stderr,
        )
        progress = tqdm(
            total=self.steps, initial=self.step, desc=self.stage.progress_label, unit="step", dynamic_ncols=True
        )
        start = next_live_view = time.time()
        live_views = 0
        try:
            while self.step < self.steps:
                scalars = self.train_step()
                progress.update(1)
                if self.step % train.log_every == 0 or self.step == self.steps:
                    self.metrics["loss"].append([self.step, round(scalars["loss"], 6)])
                    progress.set_postfix(loss=f"{scalars['loss']:.3g}", t=f"{scalars['t']:.0f}")
                preview = None
                if train.validate_every and self.step % train.validate_every == 0:
                    preview = self.validate()
                elif train.live_view_every_s and (time.time() >= next_live_view or self.step == self.steps):
                    began, size = time.time(), self.stage.resolution_at(self.step)
                    preview = write_live_view(self.scenes[0], c.export, size, self.run_dir / "validation", self.device)
                    spacing = (time.time() - began) / LIVE_VIEW_SHARE if live_views else 0  # the first one warms up
                    next_live_view, live_views = time.time() + max(train.live_view_every_s, spacing), live_views + 1
                if self.step % train.checkpoint_every == 0 or self.step == self.steps:
                    self.metrics["train_seconds"] += time.time() - start
                    start = time.time()
                    self.save_checkpoint()
                if callback is not None:
                    label, title = self.stage.progress_label, self.stage.title
                    callback(Progress(label, self.step, self.steps, scalars["loss"], preview, title))
        except KeyboardInterrupt:
            self.metrics["train_seconds"] += time.time() - start
            self.save_checkpoint()
            raise
        finally:
            progress.close()

    def finish(self) -> dict:
        """Export every particle and write metrics.json (:func:`export_particles`); returns the metrics."""
        c = self.config
        self.metrics["train_seconds"] = round(self.metrics["train_seconds"], 2)
        self.metrics["seconds_per_step"] = round(self.metrics["train_seconds"] / max(1, self.steps), 4)
        self.metrics["phase_seconds"] = {phase: round(s, 5) for phase, s in self.timer.means().items()}
        redraw = PriorRedraw(self.prior, self.prompts, c.export.redraw, c.seed) if c.export.redraw.strength else None
        self.metrics.update(
            prompt=c.prompt, seed=c.seed, device=str(self.device), steps=self.steps, stage=self.stage.name
        )
        return export_particles(self.scenes, c.export, self.run_dir, self.metrics, redraw)
