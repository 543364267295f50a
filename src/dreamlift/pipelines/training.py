"""Training the embedded models: the prior (``text3d train-prior``) and temporal layers for any image prior
(``text2video train``). Both resume from their work folder's checkpoints; one trainer writes a work folder at a
time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dreamlift.config import load_config
from dreamlift.errors import UsageError
from dreamlift.loading import load_prior_model
from dreamlift.locks import claimed_folder
from dreamlift.priors.diffusion import PriorConfig
from dreamlift.runtime import resolve_device


def train_prior(
    out: Path, work: Path, config: str | None = None, overrides: Sequence[str] = (), device: str = "auto"
) -> None:
    """Train the embedded prior (a diffusers folder) into ``out``, its data and checkpoints in ``work``: the
    ``TrainPriorConfig`` of YAML file ``config`` with dotted ``overrides``."""
    from dreamlift.embedded.train import PriorTrainer, TrainPriorConfig

    train_config = load_config(TrainPriorConfig, config, list(overrides))
    resolved = resolve_device(device)
    with claimed_folder(work):
        PriorTrainer(train_config, work, out, str(resolved)).run()


def train_motion(
    out: Path,
    work: Path,
    clips: str = "procedural",
    model: str = "embedded",
    config: str | None = None,
    overrides: Sequence[str] = (),
    device: str = "auto",
) -> None:
    """Train temporal layers for the image prior ``model`` (its weights frozen) into ``out``, on the videos with
    .txt captions in the folder ``clips`` (or procedural clips), its checkpoints in ``work``: the
    ``TrainMotionConfig`` of YAML file ``config`` with dotted ``overrides``."""
    from dreamlift.video.train import MotionTrainer, TrainMotionConfig

    train_config = load_config(TrainMotionConfig, config, list(overrides), {"data": clips})
    if train_config.data != "procedural" and not Path(train_config.data).is_dir():
        raise UsageError(f"clip folder not found: {train_config.data}")
    resolved = resolve_device(device)
    # Temporal layers train in float32 (the prior too, so hidden states and layers agree on a GPU).
    prior = load_prior_model(PriorConfig(model=model, dtype="float32"), resolved)
    with claimed_folder(work):
        MotionTrainer(train_config, prior, work, out, str(resolved)).run()
