"""Score Jacobian chaining (Wang et al. 2023): the prior's score at the render, by perturb-and-average scoring.

SJC reads the denoiser D in variance-exploding form: a latent z perturbed to z + σ_t·ε, σ_t = √((1 − ᾱ_t)/ᾱ_t),
is the prior's x_t scaled by 1/√ᾱ_t, and D(z + σ_t·ε) = z + σ_t·ε − σ_t·ε̂. The score estimate
(D(z + σ_t·ε) − z)/σ_t² = (ε − ε̂)/σ_t is averaged over ``sjc.samples`` draws of ε (PAAS), and the renders move
up it: the gradient on z is (1/K)·Σ_k (ε̂_k − ε_k)/σ_t — SDS with w(t) = 1/σ_t and several noise draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamlift.guidance.base import Guidance, NoisedLatents
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.scene.cameras import Cameras
from dreamlift.timing import PhaseTimer


@dataclass
class SJCConfig:
    """Score Jacobian chaining (Wang et al. 2023)."""

    samples: int = 2
    """Noise draws averaged per step (perturb-and-average scoring)."""

    def __post_init__(self):
        if self.samples <= 0:
            raise ValueError("sjc.samples must be > 0")


class SJCGuidance(Guidance):
    """Perturb-and-average scoring of renders B×3×H×W in [0, 1]."""

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """1/σ_t = √(ᾱ_t / (1 − ᾱ_t)) per batch item (B)."""
        a = self.prior.alphas_cumprod[t]
        return (a / (1 - a)).sqrt()

    def gradient(
        self,
        x: NoisedLatents,
        cameras: Cameras,
        prompts: PromptEmbeddings,
        progress: float,
        generator: torch.Generator | None,
        timer: PhaseTimer,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        residual = torch.zeros_like(x.latents)
        for k in range(self.config.sjc.samples):
            noise = x.noise if k == 0 else torch.randn(x.noise.shape, device=x.noise.device, generator=generator)
            noisy = x.noisy if k == 0 else self.prior.add_noise(x.latents.detach(), noise, x.t)
            with timer("unet"):
                residual += self.guided_noise(noisy, x.t, cameras, prompts, self.config.scale_at(progress)) - noise
        return self.weight(x.t).view(-1, 1, 1, 1) * residual / self.config.sjc.samples, {}
