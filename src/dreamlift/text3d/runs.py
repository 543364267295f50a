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
    refine/              the mesh stage (refine.enabled, or `text3d refine`): the same layout, holding the DMTet
                         mesh with a baked texture (mesh.glb, mesh.obj + mesh.mtl + texture.png, mesh.ply)
"""

from __future__ import annotations

from pathlib import Path

import torch

from dreamlift.errors import UsageError
from dreamlift.locks import claimed_folder
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.render.raster import use_nvdiffrast
from dreamlift.render.splatting import use_gsplat
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.export import METRICS_FILE
from dreamlift.text3d.scenes import NeRFScene
from dreamlift.text3d.stages import STAGES, MeshStage, Scene
from dreamlift.text3d.trainer import TextTo3D
from dreamlift.training.checkpoints import read_checkpoint, restore_checkpoint


def refine_dir(run_dir: Path) -> Path:
    """Where the mesh stage of a run is written."""
    return run_dir / "refine"


def has_progress(run_dir: Path) -> bool:
    """Whether a run folder holds work to keep: a checkpoint or an export. A folder with only its config.yaml
    holds a run stopped before its first checkpoint, which starts over."""
    return (run_dir / "checkpoints" / "last.pt").is_file() or (run_dir / METRICS_FILE).is_file()


def load_scenes(run_dir: Path, config: Text3DConfig, device: torch.device) -> list[Scene]:
    """The scenes (one per particle) of a run folder's last checkpoint, of the stage that wrote it."""
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if not checkpoint.is_file():
        raise UsageError(f"{run_dir} has no checkpoint to export from (checkpoints/last.pt)")
    state = read_checkpoint(checkpoint, {"stage": str, "scenes": list})
    if state["stage"] not in STAGES:
        raise UsageError(f"{checkpoint} is not a dreamlift checkpoint: it names no stage of text3d")
    stage = STAGES[state["stage"]](config)
    scenes = [stage.make_scene(device) for _ in state["scenes"]]
    restore_checkpoint(checkpoint, state, {"scenes": scenes}, {})
    return scenes


def check_device(config: Text3DConfig, device: torch.device) -> None:
    """Refuse (UsageError) a backend the device cannot run, before anything is written: gsplat or nvdiffrast
    asked for without CUDA, or without the library installed."""
    if config.scene == "gaussians":
        use_gsplat(config.gaussians.splatting, device)
    if config.refine.enabled:
        use_nvdiffrast(config.refine.rasterizer, device)


def run_stages(config: Text3DConfig, prior: DiffusionPrior, run_dir: Path, device: torch.device, resume: bool) -> dict:
    """Stage 1 (a NeRF or Gaussians) into ``run_dir`` and, with ``refine.enabled``, the mesh stage into
    ``run_dir/refine``; each resumes from its own checkpoint when ``resume`` is set (and starts over where it has
    none). Returns the last stage's metrics. The caller holds ``run_dir``'s writer lock
    (:func:`~dreamlift.locks.claimed_folder`); this takes the mesh stage's."""
    check_device(config, device)
    metrics = TextTo3D(config, prior, run_dir, device).run(resume=resume)
    if not config.refine.enabled:
        return metrics
    with claimed_folder(refine_dir(run_dir)):
        return refine_run(config, prior, run_dir, refine_dir(run_dir), device, resume)


def refine_run(
    config: Text3DConfig, prior: DiffusionPrior, nerf_dir: Path, out_dir: Path, device: torch.device, resume: bool
) -> dict:
    """The mesh stage from the NeRF of ``nerf_dir`` into ``out_dir``, resumed there when ``resume`` is set and
    it has a checkpoint."""
    resume = resume and (out_dir / "checkpoints" / "last.pt").is_file()
    start_from = None if resume else load_scenes(nerf_dir, config, device)
    if start_from is not None and not all(isinstance(scene, NeRFScene) for scene in start_from):
        raise UsageError(f"{nerf_dir} holds no NeRF run; refine starts from a NeRF run")
    return TextTo3D(config, prior, out_dir, device, MeshStage(config), start_from).run(resume=resume)
