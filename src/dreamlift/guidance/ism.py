"""Interval score matching (LucidDreamer, Liang et al. 2023): score distillation with its noise found, not drawn.

SDS compares the prior's guided ε̂ at x_t with the random ε that made x_t, so the image a step pushes towards
changes from step to step with ε (the variance behind SDS's lumps and over-smoothing). ISM instead carries the
render's latents x_0 up the prior's own deterministic DDIM trajectory, with unconditional predictions: in strides
of ``ism.inversion_stride`` to x_s, then one interval to x_t, t = s + ``ism.interval``. It matches the guided ε̂
at x_t to the unconditional ε_∅ at x_s that took it there:

    g = w(t)·(ε̂(x_t, t, y) − ε_∅(x_s, s))

Each step costs ⌈s / stride⌉ + 1 unconditional U-Net calls more than SDS; no random noise enters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamlift.guidance.base import Guidance, NoisedLatents
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.scene.cameras import Cameras
from dreamlift.timing import PhaseTimer


@dataclass
class ISMConfig:
    """Interval score matching (LucidDreamer)."""

    interval: float = 0.08
    """t − s, as a fraction of the prior's training timesteps (LucidDreamer's δ_T, 80 of 1000)."""
    inversion_stride: float = 0.2
    """Largest DDIM inversion step from x_0 to x_s, as a fraction of the timesteps (LucidDreamer's δ_S, 200)."""

    def __post_init__(self):
        if not 0 < self.interval < 1 or not 0 < self.inversion_stride <= 1:
            raise ValueError("ism.interval must lie in (0, 1) and ism.inversion_stride in (0, 1]")


class ISMGuidance(Guidance):
    """Interval score matching of renders B×3×H×W in [0, 1]."""

    def ddim_step(self, x: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM from timestep t to t_next (B each, either direction) along the prediction ε:
        x̂_0 = (x − √(1 − ᾱ_t)·ε)/√ᾱ_t, then √ᾱ_next·x̂_0 + √(1 − ᾱ_next)·ε."""
        return self.prior.add_noise(self.prior.clean_from_noise(x, eps, t), eps, t_next)

    @torch.no_grad()
    def invert(
        self, latents: torch.Tensor, s: torch.Tensor, uncond: torch.Tensor, timer: PhaseTimer
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x_s (B×C×h×w) by DDIM inversion of the latents from timestep 0 in strides of at most
        ``ism.inversion_stride``, and the unconditional ε_∅(x_s, s) that the next step up takes."""
        stride = max(1, int(self.config.ism.inversion_stride * self.prior.num_train_timesteps))
        x, k = latents, torch.zeros_like(s)
        while True:
            with timer("unet"):
                eps = self.prior.predict_noise(x, k, uncond)
            if bool((k == s).all()):
                return x, eps
            k_next = torch.minimum(k + stride, s)
            x, k = self.ddim_step(x, eps, k, k_next), k_next

    def gradient(
        self,
        x: NoisedLatents,
        cameras: Cameras,
        prompts: PromptEmbeddings,
        progress: float,
        generator: torch.Generator | None,
        timer: PhaseTimer,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """ISM's update at the drawn timesteps ``x.t`` (its random ε is not used)."""
        interval = max(1, int(self.config.ism.interval * self.prior.num_train_timesteps))
        s = (x.t - interval).clamp(min=0)
        _, uncond = prompts.for_cameras(cameras.azimuth, cameras.elevation)
        x_s, eps_s = self.invert(x.latents.detach(), s, uncond, timer)
        x_t = self.ddim_step(x_s, eps_s, s, x.t)
        with timer("unet"):
            eps_hat = self.guided_noise(x_t, x.t, cameras, prompts, self.config.scale_at(progress))
        return self.weight(x.t).view(-1, 1, 1, 1) * (eps_hat - eps_s), {}
