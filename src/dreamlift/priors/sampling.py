"""Sampling from a prior with its own scheduler and classifier-free guidance: one denoising loop for images
and videos, plain text-to-image sampling, to see what a prior believes, and image-to-image redrawing (SDEdit)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from dreamlift.priors.diffusion import DiffusionPrior, classifier_free_guidance

GuidedModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(model input 2B×…, timestep) → model output 2B×…: the conditional half first, then the unconditional."""


def text_guided_unet(prior: DiffusionPrior, cond: torch.Tensor, uncond: torch.Tensor) -> GuidedModel:
    """The prior's U-Net as a :data:`GuidedModel` for the text states ``cond`` and ``uncond`` (each B×L×D)."""
    text = torch.cat([cond, uncond]).to(prior.dtype)

    def model(sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return prior.unet(sample, t, encoder_hidden_states=text).sample

    return model


def denoise_with_cfg(
    prior: DiffusionPrior,
    model: GuidedModel,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    scale: float,
    on_step: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Run the prior's scheduler (its timesteps already set) over ``timesteps`` from ``latents`` B×…, with CFG
    uncond + s·(cond − uncond) of ``model``'s two halves; ``on_step`` is called after each step."""
    scheduler = prior.scheduler
    for t in timesteps:
        model_input = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        out_cond, out_uncond = model(model_input.to(prior.dtype), t).float().chunk(2)
        latents = scheduler.step(classifier_free_guidance(out_cond, out_uncond, scale), t, latents).prev_sample
        if on_step is not None:
            on_step()
    return latents


@torch.no_grad()
def sample_images(
    prior: DiffusionPrior,
    prompts: list[str],
    steps: int = 30,
    guidance_scale: float = 7.5,
    generator: torch.Generator | None = None,
    negative_prompt: str = "",
    show_progress: bool = False,
) -> torch.Tensor:
    """One image per prompt, N×3×H×W in [0, 1], with the prior's scheduler and CFG ε_u + s·(ε_c − ε_u).

    ``generator`` lives on the CPU; the initial noise is drawn there, so results match across devices.
    """
    scheduler = prior.scheduler
    scheduler.set_timesteps(steps, device=prior.device)
    cond = prior.encode_text(prompts)
    model = text_guided_unet(prior, cond, prior.encode_text([negative_prompt]).expand_as(cond))
    channels = prior.unet.config.in_channels
    size = prior.unet.config.sample_size
    latents = torch.randn(len(prompts), channels, size, size, generator=generator).to(prior.device)
    latents = latents * scheduler.init_noise_sigma
    progress = tqdm(total=len(scheduler.timesteps), desc="sample", disable=not show_progress, leave=False)
    latents = denoise_with_cfg(prior, model, latents, scheduler.timesteps, guidance_scale, lambda: progress.update(1))
    progress.close()
    return prior.decode(latents)


@torch.no_grad()
def redraw_images(
    prior: DiffusionPrior,
    images: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    strength: float,
    steps: int = 20,
    guidance_scale: float = 7.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Images B×3×H×W in [0, 1] redrawn by the prior (SDEdit; diffusers' image-to-image): encoded (at the
    prior's size), noised to the timestep ``strength`` (0–1) of the way into a ``steps``-step schedule, denoised
    from there with CFG between the text states ``cond`` and ``uncond`` (each B×L×D), and decoded to H×W again;
    returns B×3×H×W in [0, 1]. Low strengths keep the images; high ones keep little more than their layout.

    ``generator`` lives on the CPU and draws the latents (from the VAE's posterior) and the noise, so one seed
    redraws alike each time and on any device.
    """
    scheduler = prior.scheduler
    scheduler.set_timesteps(steps, device=prior.device)
    timesteps = scheduler.timesteps[steps - max(1, round(steps * strength)) :]
    latents = prior.encode_images(images, generator)
    noise = torch.randn(latents.shape, generator=generator).to(prior.device)
    latents = scheduler.add_noise(latents, noise, timesteps[:1].repeat(len(latents)))
    latents = denoise_with_cfg(prior, text_guided_unet(prior, cond, uncond), latents, timesteps, guidance_scale)
    redrawn = prior.decode(latents)
    if redrawn.shape[-2:] != images.shape[-2:]:
        redrawn = F.interpolate(redrawn, size=images.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    return redrawn
