"""Loading the models a run names: the image prior and the motion adapter, each from its own config value.

``embedded`` names the models shipped in the package (:mod:`dreamlift.embedded`); anything else is a hub id or
a local folder, loaded with diffusers (prior) or converted on load (AnimateDiff motion adapters). The entry
points and batch workers load models here and hand them to the pipelines, which never load models themselves.
The model code (diffusers) is imported when a model is loaded, so that a batch worker starts in a moment.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dreamlift.embedded import EMBEDDED_MOTION_DIR, embedded_prior_path
from dreamlift.errors import UsageError

if TYPE_CHECKING:
    import torch

    from dreamlift.priors.diffusion import DiffusionPrior, PriorConfig
    from dreamlift.video.temporal import TemporalAdapter


def load_prior_model(config: PriorConfig, device: torch.device) -> DiffusionPrior:
    """The prior ``config.model`` names; says so on stderr when the embedded default is a random stand-in."""
    from dreamlift.priors.diffusion import load_prior

    path = config.model
    if path == "embedded":
        path, trained = embedded_prior_path()
        if not trained:
            print(
                "warning: this install carries no trained embedded prior; using a random toy model, "
                "so the output is meaningless (pass --model for real weights)",
                file=sys.stderr,
            )
    return load_prior(config, path, device)


def load_motion_adapter(source: str, unet) -> TemporalAdapter:
    """The motion adapter (temporal layers) ``source`` names — ``embedded``, a folder, a hub id or an AnimateDiff
    file — checked against ``unet``; a mismatch is a UsageError."""
    from dreamlift.video.temporal import TemporalAdapter, load_temporal_adapter

    if source == "embedded":
        if (EMBEDDED_MOTION_DIR / "config.json").is_file():
            source = EMBEDDED_MOTION_DIR
        else:
            print(
                "warning: this install carries no trained embedded motion adapter; using zero-initialised temporal "
                "layers, so every frame is the same image (pass --motion-adapter, or --mode zero-shot)",
                file=sys.stderr,
            )
            return TemporalAdapter.for_unet(unet, text_attention=False, num_attention_heads=1)
    adapter = load_temporal_adapter(source)
    try:
        adapter.check_fits(unet)
    except ValueError as err:
        raise UsageError(f"{err} (pass a matching --motion-adapter, or use --mode zero-shot)") from None
    return adapter


class ModelCache:
    """Loaded priors and motion adapters kept between the runs of one process (a batch worker), by what names
    them, so consecutive jobs on the same model load it once."""

    def __init__(self):
        self._priors: dict[tuple, DiffusionPrior] = {}
        self._adapters: dict[tuple, TemporalAdapter] = {}

    def prior(self, config: PriorConfig, device: torch.device) -> DiffusionPrior:
        key = (config.model, config.dtype, config.pixel_space, str(device))
        if key not in self._priors:
            self._priors[key] = load_prior_model(config, device)
        return self._priors[key]

    def motion_adapter(self, source: str, prior: DiffusionPrior) -> TemporalAdapter:
        key = (source, id(prior))
        if key not in self._adapters:
            self._adapters[key] = load_motion_adapter(source, prior.unet)
        return self._adapters[key]
