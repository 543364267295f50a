"""dreamlift: text to 3D assets and short videos with a frozen 2D diffusion prior.

    from dreamlift import TextTo3DPipeline

    result = TextTo3DPipeline.from_pretrained("embedded")("a red cube")
    result.mesh.show()

The pipelines (:mod:`dreamlift.pipelines`) are imported when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from dreamlift.pipelines import PUBLIC

__version__ = "0.1.0"

__all__ = [*PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in PUBLIC:
        return getattr(importlib.import_module("dreamlift.pipelines"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
