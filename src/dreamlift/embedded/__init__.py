"""The project's own small prior: dataset, training, shipped weights, and the judge that grades it."""

from __future__ import annotations

import os
from pathlib import Path

EMBEDDED_PRIOR_DIR = Path(__file__).parent / "prior"
"""The trained diffusers folder shipped inside the package (with its model card, README.md)."""
EMBEDDED_MOTION_DIR = Path(__file__).parent / "motion"
"""The embedded prior's trained temporal layers (a TemporalAdapter folder with its model card, README.md)."""


def embedded_prior_path() -> tuple[Path, bool]:
    """The folder of the embedded prior, and whether it holds trained weights.

    Without shipped weights a random toy model is built once in the user's cache; its outputs are meaningless.
    """
    if (EMBEDDED_PRIOR_DIR / "model_index.json").is_file():
        return EMBEDDED_PRIOR_DIR, True
    from dreamlift.embedded.random_prior import build_random_prior

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dreamlift" / "random-prior"
    if not (cache / "model_index.json").is_file():
        build_random_prior(cache)
    return cache, False
