"""Entropic score distillation (ESD, Wang et al. 2024): VSD (guidance/vsd.py) whose subtracted LoRA score is
λ·ε_LoRA(no camera) + (1 − λ)·ε_LoRA(camera), which adds an entropy term that keeps views of the object diverse
(against the multi-face problem). The LoRA learns the camera-free score from the samples whose camera condition
``vsd.camera_dropout`` drops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dreamlift.guidance.vsd import VSDGuidance
from dreamlift.priors.diffusion import DiffusionPrior

if TYPE_CHECKING:
    from dreamlift.guidance.config import GuidanceConfig


@dataclass
class ESDConfig:
    """Entropic score distillation (Wang et al. 2024)."""

    entropy_weight: float = 0.5
    """λ: the LoRA score subtracted is λ·ε_LoRA(no camera) + (1 − λ)·ε_LoRA(camera)."""

    def __post_init__(self):
        if not 0 <= self.entropy_weight <= 1:
            raise ValueError("esd.entropy_weight must lie in [0, 1]")


class ESDGuidance(VSDGuidance):
    """ESD: VSD whose subtracted LoRA score mixes in the camera-free one with weight ``esd.entropy_weight``."""

    def __init__(self, config: GuidanceConfig, prior: DiffusionPrior):
        super().__init__(config, prior, entropy_weight=config.esd.entropy_weight)
