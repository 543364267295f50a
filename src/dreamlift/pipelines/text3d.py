"""text → 3D (or a picture → 3D) in a run folder: :class:`TextTo3DPipeline`, what the CLI, the batch runner and
scripts call.

    from dreamlift import TextTo3DPipeline

    pipe = TextTo3DPipeline.from_pretrained("embedded")  # or a hub id / diffusers folder of an SD-style model
    result = pipe("a red cube", steps=300, seed=0, out_dir="outputs/cube")
    result.mesh  # trimesh.Trimesh, as in the files (y up)
    result.save("assets/cube")

A run folder holds the config, checkpoints, validation views, the exported files and metrics.json
(:mod:`dreamlift.text3d.runs`); a run resumes from it after an interruption, and ``export`` and ``refine``
start from it. One process writes a folder at a time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import trimesh

from dreamlift.config import load_config
from dreamlift.embedded.vocabulary import warn_of_unknown_words
from dreamlift.errors import UsageError
from dreamlift.io import copy_files, fresh_run_dir, read_json_object, remove_leftovers
from dreamlift.loading import ModelCache
from dreamlift.locks import claimed_folder
from dreamlift.priors.diffusion import DiffusionPrior, PriorConfig
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.progress import ProgressCallback
from dreamlift.runtime import resolve_device
from dreamlift.text3d import DEFAULT_PRESET
from dreamlift.text3d.config import Text3DConfig, read_run_config
from dreamlift.text3d.export import METRICS_FILE, export_particles
from dreamlift.text3d.redraw import PriorRedraw
from dreamlift.text3d.reference import REFERENCE_FILE, read_picture
from dreamlift.text3d.runs import has_progress, load_scenes, refine_dir, run_refine_stage, run_stages
from dreamlift.text3d.scene_kinds import STAGES, check_stages
from dreamlift.text3d.stages import Stage

RUN_FILES = ("config.yaml", METRICS_FILE, REFERENCE_FILE, "gaussians.ply", "turntable.mp4", "texture.png")
"""The files of a run folder besides its meshes that :meth:`TextTo3DOutput.save` copies."""


@dataclass
class TextTo3DOutput:
    """What a text3d run made: the folder of the stage that exported last (``refine/`` for a refined run)."""

    run_dir: Path
    config: Text3DConfig
    """The run's resolved config (its config.yaml)."""
    metrics: dict
    """Loss curve, timings and the export's statistics (metrics.json)."""

    @property
    def files(self) -> dict[str, Path]:
        """The exported files by name: mesh.glb/.obj/.mtl/.ply, texture.png, gaussians.ply, turntable.mp4,
        reference.png, config.yaml, metrics.json — those the run wrote."""
        names = [path.name for path in sorted(self.run_dir.glob("mesh.*"))] + list(RUN_FILES)
        return {name: self.run_dir / name for name in names if (self.run_dir / name).is_file()}

    @cached_property
    def mesh(self) -> trimesh.Trimesh:
        """The exported mesh (particle 0), as in its files: y up, with its colours."""
        for name in ("mesh.glb", "mesh.ply", "mesh.obj"):
            if (self.run_dir / name).is_file():
                return trimesh.load(self.run_dir / name, force="mesh")
        raise UsageError(f"{self.run_dir} holds no exported mesh (export.formats is empty)")

    @property
    def stage(self) -> Stage:
        """The stage that wrote the folder (its step count, its guidance schedule), as metrics.json names it."""
        name = self.metrics.get("stage")
        if name not in STAGES:
            raise UsageError(f"{self.run_dir} names no stage of text3d in its metrics (stage: {name!r})")
        return STAGES[name](self.config)

    def turntable(self) -> np.ndarray:
        """The turntable's frames, F×H×W×3 uint8 (empty when ``export.turntable_frames`` is 0)."""
        import imageio.v3 as iio

        path = self.run_dir / "turntable.mp4"
        return iio.imread(path) if path.is_file() else np.zeros((0, 0, 0, 3), np.uint8)

    def save(self, out_dir: Path | str) -> Path:
        """Copy the exported files (:attr:`files`) into ``out_dir``, each written atomically; returns it."""
        return copy_files(self.files, out_dir)


def text3d_config(
    prompt: str | None = None,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    values: dict | None = None,
) -> Text3DConfig:
    """A run's config as the pipeline resolves it: preset ``config`` (default the default preset), then dotted
    ``overrides``, then ``values`` (dotted key → value) and the prompt; bad keys or values are a UsageError."""
    values = {**(values or {}), "prompt": (prompt or "").strip()}
    return load_config(Text3DConfig, str(config or DEFAULT_PRESET), list(overrides), values)


def read_run(run_dir: str | Path, metrics: dict | None = None) -> TextTo3DOutput:
    """The run (or refine stage) in ``run_dir`` as it stands: its config.yaml and its metrics.json (empty before
    its export; ``metrics``: already read); a folder without a config is a UsageError."""
    run_dir = Path(run_dir)
    if metrics is None:
        metrics_path = run_dir / METRICS_FILE
        metrics = read_json_object(metrics_path) if metrics_path.is_file() else {}
    return TextTo3DOutput(run_dir, read_run_config(run_dir), metrics)


class TextTo3DPipeline:
    """Makes 3D assets with a diffusion prior: stage 1 (a NeRF or 3D Gaussians), the refine stage, the export.

    ``model``: the prior every run uses (``embedded``, a hub id or a diffusers folder); None uses each run's own
    config (its preset's ``prior.model``, or a resumed run's). ``device``: ``auto``, ``cpu`` or ``cuda``; None
    uses each run's config. ``models``: where loaded priors are kept, so a process loads each once (a batch
    worker shares one).
    """

    def __init__(self, model: str | None = None, device: str | None = None, models: ModelCache | None = None):
        self.model, self.device, self.models = model, device, models or ModelCache()

    @classmethod
    def from_pretrained(cls, model: str = "embedded", device: str = "auto") -> TextTo3DPipeline:
        """A pipeline with ``model``'s prior loaded now on ``device`` (a bad model folder fails here, not later)."""
        pipeline = cls(model, device)
        pipeline.prior(PriorConfig(model=model), resolve_device(device))
        return pipeline

    def prior(self, config: PriorConfig, device: torch.device) -> DiffusionPrior:
        """The prior ``config`` names, loaded once per pipeline."""
        return self.models.prior(config, device)

    # --- configs ----------------------------------------------------------------------------------------------
    def config(
        self,
        prompt: str | None = None,
        *,
        config: str | Path | None = None,
        overrides: Sequence[str] = (),
        image: str | Path | None = None,
        steps: int | None = None,
        seed: int | None = None,
    ) -> Text3DConfig:
        """The run config of a prompt (or ``image``, with an optional prompt for the other views): preset
        ``config`` (a name such as ``dreamgaussian`` or a YAML path; default the default preset) with dotted
        ``overrides`` (``["guidance.scale=50"]``) and the keyword values on top. An empty prompt without an image,
        or a picture that cannot be read, is a UsageError."""
        if image is None and (prompt is None or not prompt.strip()):
            raise UsageError('the prompt is empty; say what to make, e.g. text3d "a red cube"')
        values = self._values({"train.steps": steps, "seed": seed})
        if image is not None:
            values["reference.image"] = str(Path(image).absolute())
        run_config = text3d_config(prompt, config, overrides, values)
        if run_config.reference.image:
            read_picture(run_config.reference.image, run_config.reference.background_tolerance)
        return run_config

    def _values(self, values: dict) -> dict:
        """``values`` and the pipeline's model and device, those that are set."""
        values = {**values, "prior.model": self.model, "device": self.device}
        return {key: value for key, value in values.items() if value is not None}

    # --- runs -------------------------------------------------------------------------------------------------
    def __call__(
        self,
        prompt: str | None = None,
        *,
        config: str | Path | None = None,
        overrides: Sequence[str] = (),
        image: str | Path | None = None,
        steps: int | None = None,
        seed: int | None = None,
        out_dir: str | Path | None = None,
        callback: ProgressCallback | None = None,
    ) -> TextTo3DOutput:
        """Make the 3D asset of ``prompt`` (see :meth:`config` for the settings) in ``out_dir`` (default:
        outputs/<prompt>, numbered if taken), which must not hold a run yet; ``callback`` hears of every step."""
        run_config = self.config(prompt, config=config, overrides=overrides, image=image, steps=steps, seed=seed)
        name = run_config.prompt or Path(run_config.reference.image).stem
        return self.run(run_config, Path(out_dir) if out_dir is not None else fresh_run_dir(name), callback=callback)

    def resume(
        self,
        run_dir: str | Path,
        overrides: Sequence[str] = (),
        *,
        prompt: str | None = None,
        callback: ProgressCallback | None = None,
    ) -> TextTo3DOutput:
        """Continue the run in ``run_dir`` from its last checkpoint (with dotted ``overrides`` of its config, e.g.
        a larger ``train.steps``); a finished run is returned as it is. ``prompt``, when given, must be the
        run's."""
        run_dir = Path(run_dir)
        config = read_run_config(run_dir, list(overrides), self._values({}))
        if prompt is not None and prompt.strip() != config.prompt:
            raise UsageError(f'{run_dir} is a run of "{config.prompt}", not "{prompt}"')
        return self.run(config, run_dir, True, callback)

    def run(
        self, config: Text3DConfig, run_dir: Path, resume: bool = False, callback: ProgressCallback | None = None
    ) -> TextTo3DOutput:
        """Run ``config``'s stages in ``run_dir`` (resumed from its checkpoints with ``resume``), holding the folder
        while it runs. Without ``resume``, a folder that holds a run already is a UsageError."""
        device = resolve_device(config.device)
        check_stages(config, device)
        prior = self.prior(config.prior, device)  # a model that cannot load is refused before the folder is made
        with claimed_folder(run_dir):  # a second writer of the same folder is refused while this one lives
            if not resume and has_progress(run_dir):
                raise UsageError(f"{run_dir} already holds a run; resume it, or choose another folder")
            if not resume and (run_dir / "config.yaml").is_file():
                print(
                    f"text3d: {run_dir} holds a run stopped before its first checkpoint; starting over", file=sys.stderr
                )
            return self._run_stages(config, prior, run_dir, device, resume, callback)

    def run_in_held_folder(
        self,
        config: Text3DConfig,
        run_dir: Path,
        device: torch.device,
        resume: bool,
        callback: ProgressCallback | None = None,
    ) -> TextTo3DOutput:
        """:meth:`run` on ``device`` in a folder the caller holds already (a batch worker holds its job's)."""
        check_stages(config, device)
        return self._run_stages(config, self.prior(config.prior, device), run_dir, device, resume, callback)

    @staticmethod
    def _run_stages(
        config: Text3DConfig,
        prior: DiffusionPrior,
        run_dir: Path,
        device: torch.device,
        resume: bool,
        callback: ProgressCallback | None,
    ) -> TextTo3DOutput:
        warn_of_unknown_words(config.prior.model, config.prompt)
        metrics = run_stages(config, prior, run_dir, device, resume, callback)
        return TextTo3DOutput(refine_dir(run_dir) if config.refine.enabled else run_dir, config, metrics)

    # --- on a finished run ------------------------------------------------------------------------------------
    def export(self, run_dir: str | Path, overrides: Sequence[str] = ()) -> TextTo3DOutput:
        """Export the run in ``run_dir`` again from its last checkpoint, with dotted ``overrides`` of its config
        (e.g. ``["export.resolution=256"]``); replaces its meshes, turntable and metrics."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UsageError(f"run folder not found: {run_dir}")
        config = read_run_config(run_dir, list(overrides), self._values({}))
        device = resolve_device(config.device)
        with claimed_folder(run_dir):  # not while the run (or another export) writes it
            metrics_path = run_dir / METRICS_FILE
            metrics = read_json_object(metrics_path) if metrics_path.is_file() else {}
            scenes, _ = load_scenes(run_dir, config, device)
            redraw = None
            if config.export.redraw.strength > 0:
                prior = self.prior(config.prior, device)
                g = config.guidance
                prompts = PromptEmbeddings(prior, config.prompt, g.negative_prompt, g.view_dependent)
                redraw = PriorRedraw(prior, prompts, config.export.redraw, config.seed)
            remove_leftovers(run_dir)
            metrics = export_particles(scenes, config.export, run_dir, metrics, redraw)
        return TextTo3DOutput(run_dir, config, metrics)

    def refine(
        self,
        run_dir: str | Path,
        overrides: Sequence[str] = (),
        *,
        steps: int | None = None,
        out_dir: str | Path | None = None,
        resume: bool = False,
        callback: ProgressCallback | None = None,
    ) -> TextTo3DOutput:
        """Run the refine stage (Magic3D: a DMTet mesh from the NeRF, textured export) on the finished NeRF run in
        ``run_dir``, into ``out_dir`` (default ``run_dir/refine``); with ``resume``, continue it there."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UsageError(f"run folder not found: {run_dir}")
        out = Path(out_dir) if out_dir is not None else refine_dir(run_dir)
        if out.resolve() == run_dir.resolve():
            raise UsageError("the refine stage goes beside its NeRF run: --out (out_dir) must name another folder")
        values = self._values({"refine.steps": steps})
        config = read_run_config(out if resume else run_dir, list(overrides), values)
        device = resolve_device(config.device)
        prior = self.prior(config.prior, device)
        # The NeRF run is read while nothing writes it; the refine stage's folder has one writer.
        with claimed_folder(run_dir), claimed_folder(out):
            if not resume and has_progress(out):
                raise UsageError(f"{out} already holds a refine stage; resume it, or choose another folder")
            metrics = run_refine_stage(config, prior, run_dir, out, device, resume, callback)
        return TextTo3DOutput(out, config, metrics)
