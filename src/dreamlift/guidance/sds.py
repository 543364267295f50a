"""Score distillation sampling (DreamFusion, Poole et al. 2022) on a latent or pixel-space prior.

Per step: encode the renders to the prior's space, noise them at a random timestep t, ask the frozen prior for
ε̂ with classifier-free guidance, and push the renders along −w(t)·(ε̂ − ε). The gradient is applied with the
target-MSE trick: loss = ½‖z − sg(z − g)‖² / B, whose gradient with respect to z is exactly g / B, so the
logged loss is ½‖g‖²/B — the size of the update — rather than a meaningless constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.renderers.cameras import Cameras
from dreamlift.timing import PhaseTimer


@dataclass
class SDSConfig:
    """Score distillation settings."""

    scale: float = 100.0
    """Classifier-free guidance scale s in ε_u + s·(ε_c − ε_u); DreamFusion-with-SD practice uses 100."""
    t_min: float = 0.02
    """Smallest timestep, as a fraction of the prior's training timesteps."""
    t_max: float = 0.98
    """Largest timestep at the start of training (fraction)."""
    t_max_final: float = 0.98
    """Largest timestep at the end of training (fraction): it falls linearly from t_max over the run."""
    weighting: Literal["sds", "uniform"] = "sds"
    """w(t): ``sds`` is 1 − ᾱ_t (DreamFusion), ``uniform`` is 1."""
    grad_clip: float | None = None
    """Clip each element of the gradient to [−c, c]; None = no clipping."""
    view_dependent: bool = True
    """Append ", front view" etc. to the prompt from the camera's angles."""
    negative_prompt: str = ""
    """Text of the unconditional branch of CFG."""

    def __post_init__(self):
        if not 0 <= self.t_min < self.t_max <= 1 or not self.t_min < self.t_max_final <= 1:
            raise ValueError("timesteps need 0 <= t_min < t_max <= 1 and t_min < t_max_final <= 1")
        if self.scale < 0:
            raise ValueError("scale must be >= 0")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError("grad_clip must be > 0 (or null to disable)")


@dataclass
class GuidanceOutput:
    """What a guidance step returns: the loss to backpropagate and scalar diagnostics to log."""

    loss: torch.Tensor
    diagnostics: dict[str, float] = field(default_factory=dict)


class SDSGuidance:
    """Score distillation: renders B×3×H×W in [0, 1] → a loss whose gradient is the SDS update."""

    def __init__(self, config: SDSConfig, prior: DiffusionPrior):
        self.config, self.prior = config, prior

    def timestep_range(self, progress: float) -> tuple[int, int]:
        """Integer [low, high] timestep range at a point of training (progress from 0 to 1)."""
        c, total = self.config, self.prior.num_train_timesteps
        t_max = c.t_max + (c.t_max_final - c.t_max) * min(max(progress, 0.0), 1.0)
        return int(c.t_min * total), max(int(c.t_min * total) + 1, int(t_max * total))

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) per batch item (B)."""
        if self.config.weighting == "sds":
            return 1 - self.prior.alphas_cumprod[t]
        return torch.ones_like(t, dtype=torch.float32)

    def __call__(
        self,
        images: torch.Tensor,
        cameras: Cameras,
        prompts: PromptEmbeddings,
        progress: float,
        generator: torch.Generator | None = None,
        timer: PhaseTimer | None = None,
    ) -> GuidanceOutput:
        """SDS loss for renders (B×3×H×W, [0, 1]) seen from ``cameras``, ``progress`` (0–1) into training.

        ``generator`` (on the prior's device) fixes t and ε, for tests and reproducible runs; ``timer`` charges
        the VAE encoding to "encode" and the prior's prediction to "unet".
        """
        prior, c = self.prior, self.config
        timer = timer or PhaseTimer(prior.device, enabled=False)
        batch = images.shape[0]
        with timer("encode"):
            latents = prior.encode_images(images).float()
        low, high = self.timestep_range(progress)
        t = torch.randint(low, high + 1, (batch,), device=prior.device, generator=generator)
        noise = torch.randn(latents.shape, device=prior.device, generator=generator)
        noisy = prior.add_noise(latents.detach(), noise, t)
        cond, uncond = prompts.for_cameras(cameras.azimuth, cameras.elevation)
        with timer("unet"):
            eps_hat, _, _ = prior.predict_noise_cfg(noisy, t, cond, uncond, c.scale)
        grad = self.weight(t).view(-1, 1, 1, 1) * (eps_hat - noise)
        finite = torch.isfinite(grad).all()
        grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        if c.grad_clip is not None:
            grad = grad.clamp(-c.grad_clip, c.grad_clip)
        target = (latents - grad).detach()
        loss = 0.5 * ((latents - target) ** 2).sum() / batch
        return GuidanceOutput(
            loss,
            {"t": t.float().mean().item(), "grad_norm": grad.norm().item() / batch, "nonfinite": float(not finite)},
        )
