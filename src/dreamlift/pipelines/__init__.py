"""dreamlift's Python API: one pipeline per job, in the manner of diffusers (``from_pretrained``, then a call that
returns an output with ``.save``). The CLI, the batch runner and scripts all go through these.

Each name is imported when first used, so that ``import dreamlift`` (and a command's ``--help``) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

PUBLIC = {
    "TextTo3DPipeline": "dreamlift.pipelines.text3d",
    "TextTo3DOutput": "dreamlift.pipelines.text3d",
    "TextToVideoPipeline": "dreamlift.pipelines.video",
    "TextToVideoOutput": "dreamlift.pipelines.video",
    "TextToImagePipeline": "dreamlift.pipelines.image",
    "train_prior": "dreamlift.pipelines.training",
    "train_motion": "dreamlift.pipelines.training",
    "Progress": "dreamlift.progress",
    "DEFAULT_PRESET": "dreamlift.text3d",
}
"""Each public name and the module it lives in."""

__all__ = list(PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)
