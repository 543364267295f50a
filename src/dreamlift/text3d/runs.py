"""Run folders of text3d and the order of their stages.

Run folder layout (everything written atomically; the export's files and metrics.json moved in together):
    .writer.lock         held by the one process that writes the folder (dreamlift.locks)
    config.yaml          the resolved config, prompt and seed included (a run is reproducible from it)
    checkpoints/last.pt  scene, optimiser, random states and metrics so far (every N steps and at the end)
    validation/*.png     four views (front, side, back, side) of each particle every N steps
    mesh.glb|obj|ply     the exported mesh with vertex colours (y-up)
    gaussians.ply        scene: gaussians — the Gaussians themselves, in the 3DGS splat layout (y-up)
    turntable.mp4        a 360° orbit
    particle-i/          mesh and turntable of particle i > 0, when train.particles > 1
    metrics.json         loss curve, timings, export statistics
    refine/              the refine stage (refine.enabled, or `text3d refine`): the same layout, holding the DMTet
                         mesh with a baked texture (mesh.glb, mesh.obj + mesh.mtl + texture.png, mesh.ply)
"""

from __future__ import annotations

from pathlib import Path

import torch

from dreamlift.errors import UsageError
from dreamlift.locks import claimed_folder
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.progress import ProgressCallback
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.export import METRICS_FILE
from dreamlift.text3d.refine import RefineStage
from dreamlift.text3d.scene_kinds import STAGES
from dreamlift.text3d.scenes import Scene
from dreamlift.text3d.stages import Stage
from dreamlift.text3d.trainer import TextTo3D
from dreamlift.training.checkpoints import read_checkpoint, restore_checkpoint


def refine_dir(run_dir: Path) -> Path:
    """Where the refine stage of a run is written."""
    return run_dir / "refine"


def has_progress(run_dir: Path) -> bool:
    """Whether a run folder holds work to keep: a checkpoint or an export. A folder with only its config.yaml
    holds a run stopped before its first checkpoint, which starts over."""
    return (run_dir / "checkpoints" / "last.pt").is_file() or (run_dir / METRICS_FILE).is_file()


def load_scenes(run_dir: Path, config: Text3DConfig, device: torch.device) -> tuple[list[Scene], Stage]:
    """The scenes (one per particle) of a run folder's last checkpoint, and the stage that wrote it."""
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if not checkpoint.is_file():
        raise UsageError(f"{run_dir} has no checkpoint to export from (checkpoints/last.pt)")
    state = read_checkpoint(checkpoint, {"stage": str, "scenes": list})
    if state["stage"] not in STAGES:
        raise UsageError(f"{checkpoint} is not a dreamlift checkpoint: it names no stage of text3d")
    stage = STAGES[state["stage"]](config)
    scenes = [stage.make_scene(device) for _ in state["scenes"]]
    restore_checkpoint(checkpoint, state, {"scenes": scenes}, {})
    return scenes, stage


def run_stages(
    config: Text3DConfig,
    prior: DiffusionPrior,
    run_dir: Path,
    device: torch.device,
    resume: bool,
    callback: ProgressCallback | None = None,
) -> dict:
    """Stage 1 (a NeRF or Gaussians) into ``run_dir`` and, with ``refine.enabled``, the refine stage into
    ``run_dir/refine``; each resumes from its own checkpoint when ``resume`` is set (and starts over where it has
    none); ``callback`` hears of every step. Returns the last stage's metrics. The caller holds ``run_dir``'s
    writer lock (:func:`~dreamlift.locks.claimed_folder`); this takes the refine stage's. The caller has checked
    that the stages can run (:func:`~dreamlift.text3d.scene_kinds.check_stages`) before writing anything."""
    metrics = TextTo3D(config, prior, run_dir, device).run(resume, callback)
    if not config.refine.enabled:
        return metrics
    with claimed_folder(refine_dir(run_dir)):
        return run_refine_stage(config, prior, run_dir, refine_dir(run_dir), device, resume, callback)


def run_refine_stage(
    config: Text3DConfig,
    prior: DiffusionPrior,
    nerf_dir: Path,
    out_dir: Path,
    device: torch.device,
    resume: bool,
    callback: ProgressCallback | None = None,
) -> dict:
    """The refine stage from the NeRF of ``nerf_dir`` into ``out_dir``, resumed there when ``resume`` is set and
    it has a checkpoint."""
    resume = resume and (out_dir / "checkpoints" / "last.pt").is_file()
    start_from = None
    if not resume:
        start_from, stage = load_scenes(nerf_dir, config, device)
        if not stage.starts_refine:
            raise UsageError(f"{nerf_dir} holds no NeRF run; refine starts from a NeRF run")
    return TextTo3D(config, prior, out_dir, device, RefineStage(config), start_from).run(resume, callback)
