"""Score distillation sampling (DreamFusion, Poole et al. 2022) on a latent or pixel-space prior.

Per step: encode the renders to the prior's space, noise them at a random timestep t, ask the frozen prior for
ε̂ with classifier-free guidance (or Perp-Neg), and push the renders along −w(t)·(ε̂ − ε).
"""

from __future__ import annotations

import torch

from dreamlift.guidance.base import Guidance, NoisedLatents
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.scene.cameras import Cameras
from dreamlift.timing import PhaseTimer


class SDSGuidance(Guidance):
    """Score distillation: renders B×3×H×W in [0, 1] → a loss whose gradient is the SDS update."""

    def gradient(
        self,
        x: NoisedLatents,
        cameras: Cameras,
        prompts: PromptEmbeddings,
        progress: float,
        generator: torch.Generator | None,
        timer: PhaseTimer,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        with timer("unet"):
            eps_hat = self.guided_noise(x.noisy, x.t, cameras, prompts, self.config.scale_at(progress))
        return self.weight(x.t).view(-1, 1, 1, 1) * (eps_hat - x.noise), {}
