"""The settings of score-distillation guidance: what every kind shares, and the sections of the kinds that
need their own (defined beside each kind). A config holds only the sections of its kind, so the config.yaml of
an SDS run records no VSD keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dreamlift.guidance.base import PerpNegConfig
from dreamlift.guidance.esd import ESDConfig
from dreamlift.guidance.ism import ISMConfig
from dreamlift.guidance.sjc import SJCConfig
from dreamlift.guidance.vsd import VSDConfig

KIND_SECTIONS = {
    "vsd": (VSDConfig, ("vsd", "esd")),
    "sjc": (SJCConfig, ("sjc",)),
    "esd": (ESDConfig, ("esd",)),
    "ism": (ISMConfig, ("ism",)),
}
"""Each kind-specific section of :class:`GuidanceConfig`: its dataclass and the kinds that read it."""


@dataclass
class GuidanceConfig:
    """Score distillation settings: the kind, and what the kinds share."""

    kind: Literal["sds", "sjc", "vsd", "esd", "ism"] = "sds"
    """Which guidance: sds (DreamFusion), sjc (score Jacobian chaining), vsd (ProlificDreamer), esd (entropic),
    ism (LucidDreamer's interval score matching)."""
    scale: float = 100.0
    """Classifier-free guidance scale s in ε_u + s·(ε_c − ε_u); DreamFusion-with-SD practice uses 100, VSD 7.5."""
    scale_final: float | None = None
    """Guidance scale at the end of training: s moves linearly from ``scale`` to it over the run (None: constant)."""
    t_min: float = 0.02
    """Smallest timestep, as a fraction of the prior's training timesteps."""
    t_max: float = 0.98
    """Largest timestep at the start of training (fraction)."""
    t_max_final: float = 0.98
    """Largest timestep at the end of training (fraction): it falls linearly from t_max over the run."""
    weighting: Literal["sds", "uniform"] = "sds"
    """w(t): ``sds`` is 1 − ᾱ_t (DreamFusion), ``uniform`` is 1. SJC always uses its own 1/σ_t."""
    grad_clip: float | None = None
    """Clip each element of the gradient to [−c, c]; None = no clipping."""
    view_dependent: bool = True
    """Append ", front view" etc. to the prompt from the camera's angles."""
    negative_prompt: str = ""
    """Text of the unconditional branch of CFG."""
    perp_neg: PerpNegConfig = field(default_factory=PerpNegConfig)
    vsd: VSDConfig | None = field(default=None, metadata={"omit_if_none": True})
    """The LoRA score model (kinds vsd and esd only; their defaults when not given)."""
    sjc: SJCConfig | None = field(default=None, metadata={"omit_if_none": True})
    """Perturb-and-average scoring (kind sjc only)."""
    esd: ESDConfig | None = field(default=None, metadata={"omit_if_none": True})
    """The entropy term (kind esd only)."""
    ism: ISMConfig | None = field(default=None, metadata={"omit_if_none": True})
    """The DDIM inversion and interval (kind ism only)."""

    def __post_init__(self):
        if not 0 <= self.t_min < self.t_max <= 1 or not self.t_min < self.t_max_final <= 1:
            raise ValueError("timesteps need 0 <= t_min < t_max <= 1 and t_min < t_max_final <= 1")
        if self.scale < 0:
            raise ValueError("scale must be >= 0")
        if self.scale_final is not None and self.scale_final < 0:
            raise ValueError("scale_final must be >= 0 (or null for a constant scale)")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError("grad_clip must be > 0 (or null to disable)")
        if self.perp_neg.enabled and not self.view_dependent:
            raise ValueError("perp_neg needs view_dependent prompts")
        for name, (section, kinds) in KIND_SECTIONS.items():
            if self.kind in kinds and getattr(self, name) is None:
                setattr(self, name, section())
            elif self.kind not in kinds and getattr(self, name) is not None:
                raise ValueError(f"guidance.{name} applies to kind {' or '.join(kinds)} only, not {self.kind}")

    def t_max_at(self, progress: float) -> float:
        """The largest timestep (fraction of the prior's training timesteps) at a point of training (0 to 1)."""
        return self.t_max + (self.t_max_final - self.t_max) * min(max(progress, 0.0), 1.0)

    def scale_at(self, progress: float) -> float:
        """The guidance scale at a point of training (progress from 0 to 1)."""
        if self.scale_final is None:
            return self.scale
        return self.scale + (self.scale_final - self.scale) * min(max(progress, 0.0), 1.0)
