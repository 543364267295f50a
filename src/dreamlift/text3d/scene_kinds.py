"""The scene kinds of text3d by name: which stage a config's ``scene`` runs in stage 1, which stage a checkpoint
names, and what a run's stages need before anything is written.

A new scene kind is one module (its scene and its stage, as text3d/nerf.py), its name here and among the config's
``scene`` values, and its preset.
"""

from __future__ import annotations

import torch

from dreamlift.errors import UsageError
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.gaussians import GaussianStage
from dreamlift.text3d.nerf import NeRFStage
from dreamlift.text3d.refine import RefineStage
from dreamlift.text3d.stages import FirstStage, Stage

FIRST_STAGES: dict[str, type[FirstStage]] = {"nerf": NeRFStage, "gaussians": GaussianStage}
"""Stage 1 of each value of a config's ``scene``."""
STAGES: dict[str, type[Stage]] = {
    name: stage for stage in (NeRFStage, GaussianStage, RefineStage) for name in (stage.name, *stage.former_names)
}
"""The stages by the names their checkpoints record."""


def first_stage(config: Text3DConfig) -> FirstStage:
    """Stage 1 of a run: of its ``scene`` kind."""
    return FIRST_STAGES[config.scene](config)


def check_stages(config: Text3DConfig, device: torch.device) -> None:
    """Refuse (UsageError), before anything is written, a run whose stages cannot run: a refine stage after a
    stage 1 it cannot start from, or a backend ``device`` cannot run (gsplat or nvdiffrast asked for without
    CUDA, or without the library installed)."""
    stages = [first_stage(config), *([RefineStage(config)] if config.refine.enabled else [])]
    if len(stages) > 1 and not stages[0].starts_refine:
        raise UsageError(f"refine.enabled needs a NeRF to start from; scene: {config.scene} cannot be refined")
    for stage in stages:
        stage.check_device(device)
