"""The commands a batch can run, each described once: its config class, default preset, the key its ``steps``
setting sets, how it saves memory after running out, and how it runs a job.

The pipelines are imported when a job runs, not with this module: a batch worker (a Ray actor, a Slurm task)
then starts, and restarts after a crash, in about a second instead of several.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamlift.config import PRESET_DIR, VIDEO_PRESET_DIR
from dreamlift.errors import UsageError
from dreamlift.pipelines import DEFAULT_PRESET

if TYPE_CHECKING:
    import torch

    from dreamlift.loading import ModelCache
    from dreamlift.progress import ProgressCallback

MIN_RESOLUTION = 16
"""Render sizes are not halved below this many pixels."""


@dataclass(frozen=True)
class BatchCommand:
    """How a batch runs one command."""

    name: str
    config_path: str
    """``module:ClassName`` of the command's config dataclass."""
    default_preset: str | None
    """Preset of a job that names none."""
    preset_dir: Path
    """Where the command's shipped presets are (a preset's name is looked up there)."""
    steps_key: str
    """The config key that a manifest line's ``steps`` sets."""
    shrink: Callable[[dict[str, Any]], None]
    """Cut a config's memory use once, in place (its plain-data form), after the GPU ran out of memory."""
    run: Callable[[Any, ModelCache, Path, torch.device, bool, ProgressCallback], None]
    """Run one job: (config, models, job folder, device, resume from the folder's checkpoint, the callback that
    hears of each step)."""

    @property
    def config_class(self) -> type:
        module, name = self.config_path.split(":")
        return getattr(importlib.import_module(module), name)


def shrink_text3d(config: dict[str, Any]) -> None:
    """Halve the render batch; at one render, halve every stage's render size instead (not below 16 px)."""
    train = config["train"]
    if train["batch_size"] > 1:
        train["batch_size"] //= 2
        return
    train["resolution"] = max(MIN_RESOLUTION, train["resolution"] // 2)
    train["high_resolution"] = train["high_resolution"] and max(MIN_RESOLUTION, train["high_resolution"] // 2)
    if "refine" in config:
        config["refine"]["resolution"] = max(MIN_RESOLUTION, config["refine"]["resolution"] // 2)


def shrink_text2video(config: dict[str, Any]) -> None:
    """Halve the frames decoded at a time."""
    config["decode_chunk"] = max(1, config["decode_chunk"] // 2)


def run_text3d(
    config, models: ModelCache, folder: Path, device: torch.device, resume: bool, callback: ProgressCallback
) -> None:
    """The stages of a :class:`~dreamlift.text3d.config.Text3DConfig` into ``folder``."""
    from dreamlift.pipelines import TextTo3DPipeline

    TextTo3DPipeline(models=models).run_in_held_folder(config, folder, device, resume, callback)


def run_text2video(
    config, models: ModelCache, folder: Path, device: torch.device, resume: bool, callback: ProgressCallback
) -> None:
    """The clips of a :class:`~dreamlift.video.config.Text2VideoConfig` into ``folder`` (sampling is short:
    nothing to resume)."""
    from dreamlift.pipelines import TextToVideoPipeline

    TextToVideoPipeline(models=models).run_in_held_folder(config, folder, device, callback)


COMMANDS: dict[str, BatchCommand] = {
    "text3d": BatchCommand(
        "text3d",
        "dreamlift.text3d.config:Text3DConfig",
        DEFAULT_PRESET,
        PRESET_DIR,
        "train.steps",
        shrink_text3d,
        run_text3d,
    ),
    "text2video": BatchCommand(
        "text2video",
        "dreamlift.video.config:Text2VideoConfig",
        None,
        VIDEO_PRESET_DIR,
        "steps",
        shrink_text2video,
        run_text2video,
    ),
}


def batch_command(name: str) -> BatchCommand:
    """The command called ``name``; an unknown one is a UsageError."""
    if name not in COMMANDS:
        raise UsageError(f"unknown batch command {name!r} (known: {', '.join(COMMANDS)})")
    return COMMANDS[name]
