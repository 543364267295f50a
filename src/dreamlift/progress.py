"""What a long job tells a caller as it goes (a GUI's progress bar and preview): :class:`Progress`, handed to the
``callback`` of the pipelines (dreamlift.pipelines) after every step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Progress:
    """One step of a job done."""

    stage: str
    """What runs: ``text3d`` (stage 1), ``text3d refine``, ``export``, ``text2video``."""
    step: int
    """Steps done in this stage."""
    steps: int
    """Steps of this stage in all."""
    loss: float | None = None
    """The step's loss (optimisation stages)."""
    preview: Path | None = None
    """A picture written at this step, or None: text3d's validation views (every ``train.validate_every`` steps) or
    its live view (every ``train.live_view_every_s`` seconds)."""
    title: str = ""
    """What a person calls what runs, for a label: the stage's title (NeRF, Gaussians, refine stage (DMTet)),
    ``export``, ``denoising``; empty when the caller names none."""


ProgressCallback = Callable[[Progress], None]
"""Called with each :class:`Progress`; it runs in the job's thread, so it should return quickly."""
