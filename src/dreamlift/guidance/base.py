"""One interface for score-distillation guidance, and what the kinds share.

A guidance object takes renders B×3×H×W in [0, 1], their cameras, the prompt embeddings and the point of
training (progress 0–1), and returns a loss whose gradient with respect to the renders is the kind's update,
with scalar diagnostics. The kinds (``guidance.kind``): ``sds`` (DreamFusion), ``sjc`` (score Jacobian
chaining), ``vsd`` (ProlificDreamer), ``esd`` (entropic score distillation) and ``ism`` (LucidDreamer's interval
score matching); see their modules.

Shared here: timestep sampling with an annealed upper bound, w(t), the prior's guided prediction (CFG, or
Perp-Neg for side and back views), and the target-MSE trick — loss = ½‖z − sg(z − g)‖² / B, whose gradient
with respect to z is exactly g / B, so the logged loss is the size of the update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.priors.views import VIEWS, view_index
from dreamlift.scene.cameras import Cameras
from dreamlift.timing import PhaseTimer

if TYPE_CHECKING:
    from dreamlift.guidance.config import GuidanceConfig


@dataclass
class PerpNegConfig:
    """Perp-Neg (Armandpour et al. 2023): side and back views push away from the front view's prompt, along the
    part of its score perpendicular to the positive prompt's, against the multi-face (Janus) problem."""

    enabled: bool = False
    side_weight: float = 0.5
    """Weight of the front-view negative for side views."""
    back_weight: float = 1.0
    """Weight of the front-view negative for back views."""

    def __post_init__(self):
        if self.side_weight < 0 or self.back_weight < 0:
            raise ValueError("perp_neg weights must be >= 0")


@dataclass
class GuidanceOutput:
    """What a guidance step returns: the loss to backpropagate, scalar diagnostics to log and, when asked for,
    ``denoised``: the images B×3×S×S in [0, 1] (the prior's size S) that the step pushes the renders towards
    (see :meth:`Guidance.denoised_images`)."""

    loss: torch.Tensor
    diagnostics: dict[str, float] = field(default_factory=dict)
    denoised: torch.Tensor | None = None


@dataclass
class NoisedLatents:
    """The renders in the prior's space and their noised copy: latents (with gradient) B×C×h×w, t (B), ε, x_t."""

    latents: torch.Tensor
    t: torch.Tensor
    noise: torch.Tensor
    noisy: torch.Tensor


class Guidance:
    """Base class of the guidance kinds; subclasses implement :meth:`gradient`.

    A kind that changes the prior (VSD adds a LoRA and a hook to its U-Net) does so when it is made, and undoes it
    in :meth:`close`; a guidance is a context manager that closes on exit, as :class:`InflatedUNet` is."""

    def __init__(self, config: GuidanceConfig, prior: DiffusionPrior):
        self.config, self.prior = config, prior

    def __call__(
        self,
        images: torch.Tensor,
        cameras: Cameras,
        prompts: PromptEmbeddings,
        progress: float,
        generator: torch.Generator | None = None,
        timer: PhaseTimer | None = None,
        denoise: bool = False,
    ) -> GuidanceOutput:
        """Loss for renders (B×3×H×W, [0, 1]) seen from ``cameras``, ``progress`` (0–1) into training.

        ``generator`` (on the prior's device) fixes t and ε, for tests and reproducible runs; ``timer`` charges
        the VAE encoding to "encode" and the U-Net calls to "unet"; ``denoise`` also decodes the images the step
        pushes towards (charged to "encode").
        """
        timer = timer or PhaseTimer(self.prior.device, enabled=False)
        x = self.encode_and_noise(images, progress, generator, timer)
        grad, diagnostics = self.gradient(x, cameras, prompts, progress, generator, timer)
        out = self.distil(x.latents, grad, x.t, **diagnostics)
        if denoise:
            with timer("encode"):
                out.denoised = self.denoised_images(x, grad)
        return out

    @torch.no_grad()
    def denoised_images(self, x: NoisedLatents, grad: torch.Tensor) -> torch.Tensor:
        """The images B×3×S×S in [0, 1] that the update ``grad`` (B×C×h×w) points to: the latents moved by
        √(1 − ᾱ_t)/(√ᾱ_t·w(t))·g, decoded. For SDS, g = w(t)·(ε̂ − ε), so this is the prior's one-step denoised
        x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t; for the other kinds, the same step along their own update."""
        a = self.prior.alphas_cumprod[x.t].view(-1, 1, 1, 1)
        step = (1 - a).sqrt() / (a.sqrt() * self.weight(x.t).view(-1, 1, 1, 1))
        return self.prior.decode(x.latents.detach() - step * torch.nan_to_num(grad))

    def gradient(
        self,
        x: NoisedLatents,
        cameras: Cameras,
        prompts: PromptEmbeddings,
        progress: float,
        generator: torch.Generator | None,
        timer: PhaseTimer,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The kind's update g on the latents (B×C×h×w; the renders move along −g) and its own diagnostics."""
        raise NotImplementedError

    # --- state (for checkpoints; only guidance that learns has any) -----------------------------------------
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    # --- what a kind adds to the prior (VSD's LoRA and hook) -------------------------------------------------
    def close(self) -> None:
        """Undo any change to the prior (VSD's LoRA); the prior is the plain frozen model afterwards. Closing
        twice does nothing more."""

    def __enter__(self) -> Guidance:
        return self

    def __exit__(self, *exc) -> None:
        """``with guidance:`` closes it however the block ends, so a shared (cached) prior is never left changed."""
        self.close()

    # --- shared steps ---------------------------------------------------------------------------------------
    def timestep_range(self, progress: float) -> tuple[int, int]:
        """Integer [low, high] timestep range at a point of training (progress from 0 to 1)."""
        total = self.prior.num_train_timesteps
        low = int(self.config.t_min * total)
        return low, max(low + 1, int(self.config.t_max_at(progress) * total))

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) per batch item (B)."""
        if self.config.weighting == "sds":
            return 1 - self.prior.alphas_cumprod[t]
        return torch.ones_like(t, dtype=torch.float32)

    def encode_and_noise(
        self, images: torch.Tensor, progress: float, generator: torch.Generator | None, timer: PhaseTimer
    ) -> NoisedLatents:
        """Encode renders (gradient kept), draw t in the annealed range and ε, and noise the detached latents."""
        prior = self.prior
        with timer("encode"):
            latents = prior.encode_images(images).float()
        low, high = self.timestep_range(progress)
        t = torch.randint(low, high + 1, (images.shape[0],), device=prior.device, generator=generator)
        noise = torch.randn(latents.shape, device=prior.device, generator=generator)
        return NoisedLatents(latents, t, noise, prior.add_noise(latents.detach(), noise, t))

    def guided_noise(
        self, noisy: torch.Tensor, t: torch.Tensor, cameras: Cameras, prompts: PromptEmbeddings, scale: float
    ) -> torch.Tensor:
        """The prior's guided ε̂ (B×C×h×w): CFG ε_u + s·(ε_c − ε_u), or with Perp-Neg for side and back views
        ε_u + s·(d_c − w·(d_n − proj_{d_c} d_n)), d_c = ε_c − ε_u, d_n = ε_front − ε_u."""
        c, prior = self.config, self.prior
        cond, uncond = prompts.for_cameras(cameras.azimuth, cameras.elevation)
        if not c.perp_neg.enabled:
            return prior.predict_noise_cfg(noisy, t, cond, uncond, scale)[0]
        batch = noisy.shape[0]
        front = prompts.views[VIEWS.index("front")].expand(batch, -1, -1)
        eps_c, eps_u, eps_n = prior.predict_noise(
            noisy.repeat(3, 1, 1, 1), t.repeat(3), torch.cat([cond, uncond, front])
        ).chunk(3)
        views = view_index(cameras.azimuth, cameras.elevation).to(noisy.device)
        weights = torch.zeros(len(VIEWS), device=noisy.device)
        weights[VIEWS.index("side")], weights[VIEWS.index("back")] = c.perp_neg.side_weight, c.perp_neg.back_weight
        return perp_neg_combine(eps_c, eps_u, eps_n, weights[views], scale)

    def predictions(
        self, noisy: torch.Tensor, t: torch.Tensor, cameras: Cameras, prompts: PromptEmbeddings, progress: float
    ) -> dict[str, torch.Tensor]:
        """The noise predictions (each B×C×h×w) a step of this kind weighs against each other, by name."""
        return {"prior": self.guided_noise(noisy, t, cameras, prompts, self.config.scale_at(progress))}

    @torch.no_grad()
    def preview(
        self,
        images: torch.Tensor,
        cameras: Cameras,
        prompts: PromptEmbeddings,
        progress: float,
        t_fraction: float = 0.5,
        seed: int = 0,
    ) -> torch.Tensor:
        """What the guidance sees, K×B×3×S×S in [0, 1] at the prior's size S: the renders, their noised latents at
        ``t_fraction`` of the timesteps decoded, and the one-step denoised x̂_0 = (x_t − √(1 − ᾱ_t)·ε)/√ᾱ_t of each
        of :meth:`predictions`."""
        prior = self.prior
        latents = prior.encode_images(images).float()
        t = torch.full((images.shape[0],), int(t_fraction * prior.num_train_timesteps), device=prior.device)
        noise = torch.randn(
            latents.shape, device=prior.device, generator=torch.Generator(prior.device).manual_seed(seed)
        )
        noisy = prior.add_noise(latents, noise, t)
        panels = [prior.decode(latents), prior.decode(noisy)]
        for eps in self.predictions(noisy, t, cameras, prompts, progress).values():
            panels.append(prior.decode(prior.clean_from_noise(noisy, eps, t)))
        return torch.stack(panels)

    def distil(
        self, latents: torch.Tensor, grad: torch.Tensor, t: torch.Tensor, **diagnostics: float
    ) -> GuidanceOutput:
        """The target-MSE loss that applies ``grad`` (B×C×h×w) to ``latents``, after the NaN guard and clipping."""
        batch = latents.shape[0]
        finite = torch.isfinite(grad).all()
        grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        if self.config.grad_clip is not None:
            grad = grad.clamp(-self.config.grad_clip, self.config.grad_clip)
        target = (latents - grad).detach()
        loss = 0.5 * ((latents - target) ** 2).sum() / batch
        return GuidanceOutput(
            loss,
            {
                "t": t.float().mean().item(),
                "grad_norm": grad.norm().item() / batch,
                "nonfinite": float(not finite),
                **diagnostics,
            },
        )


def perp_neg_combine(
    eps_c: torch.Tensor, eps_u: torch.Tensor, eps_n: torch.Tensor, weight: torch.Tensor, scale: float
) -> torch.Tensor:
    """Perp-Neg's ε̂ = ε_u + s·(d_c − w·(d_n − (⟨d_n, d_c⟩ / ⟨d_c, d_c⟩)·d_c)) per batch item (weights w: B)."""
    d_c, d_n = eps_c - eps_u, eps_n - eps_u
    dims = tuple(range(1, d_c.dim()))
    projection = (d_n * d_c).sum(dims, keepdim=True) / (d_c * d_c).sum(dims, keepdim=True).clamp(min=1e-12)
    perpendicular = d_n - projection * d_c
    return eps_u + scale * (d_c - weight.view(-1, *([1] * len(dims))) * perpendicular)
