"""Score-distillation guidance: one interface (base.py), several kinds, chosen by ``guidance.kind``."""

from __future__ import annotations

from dreamlift.guidance.base import Guidance, PerpNegConfig
from dreamlift.guidance.config import GuidanceConfig
from dreamlift.guidance.esd import ESDConfig, ESDGuidance
from dreamlift.guidance.ism import ISMConfig, ISMGuidance
from dreamlift.guidance.sds import SDSGuidance
from dreamlift.guidance.sjc import SJCConfig, SJCGuidance
from dreamlift.guidance.vsd import VSDConfig, VSDGuidance
from dreamlift.priors.diffusion import DiffusionPrior

GUIDANCE_KINDS: dict[str, type[Guidance]] = {
    "sds": SDSGuidance,
    "sjc": SJCGuidance,
    "vsd": VSDGuidance,
    "esd": ESDGuidance,
    "ism": ISMGuidance,
}
"""The guidance class of each ``guidance.kind``."""

__all__ = [
    "GUIDANCE_KINDS",
    "ESDConfig",
    "Guidance",
    "GuidanceConfig",
    "ISMConfig",
    "PerpNegConfig",
    "SJCConfig",
    "VSDConfig",
    "make_guidance",
]


def make_guidance(config: GuidanceConfig, prior: DiffusionPrior) -> Guidance:
    """The guidance of kind ``config.kind`` on ``prior``; use it inside ``with guidance:`` (see :class:`Guidance`)."""
    return GUIDANCE_KINDS[config.kind](config, prior)
