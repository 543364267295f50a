"""Score-distillation guidance: one interface (base.py), several kinds, chosen by ``guidance.kind``."""

from __future__ import annotations

from dreamlift.guidance.base import Guidance, GuidanceConfig
from dreamlift.priors.diffusion import DiffusionPrior


def make_guidance(config: GuidanceConfig, prior: DiffusionPrior) -> Guidance:
    """The guidance of kind ``config.kind`` on ``prior``."""
    if config.kind == "sds":
        from dreamlift.guidance.sds import SDSGuidance

        return SDSGuidance(config, prior)
    if config.kind == "sjc":
        from dreamlift.guidance.sjc import SJCGuidance

        return SJCGuidance(config, prior)
    from dreamlift.guidance.vsd import VSDGuidance

    return VSDGuidance(config, prior, entropy_weight=config.esd.entropy_weight if config.kind == "esd" else 0.0)
