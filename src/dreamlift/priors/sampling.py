"""Plain text-to-image sampling from a prior (its own scheduler, CFG), to see what it believes."""

from __future__ import annotations

import torch
from tqdm import tqdm

from dreamlift.priors.diffusion import DiffusionPrior


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
    uncond = prior.encode_text([negative_prompt]).expand_as(cond)
    channels = prior.unet.config.in_channels
    size = prior.unet.config.sample_size
    latents = torch.randn(len(prompts), channels, size, size, generator=generator).to(prior.device)
    latents = latents * scheduler.init_noise_sigma
    for t in tqdm(scheduler.timesteps, desc="sample", disable=not show_progress, leave=False):
        model_input = scheduler.scale_model_input(latents, t)
        both = prior.unet(
            torch.cat([model_input, model_input]).to(prior.dtype),
            t,
            encoder_hidden_states=torch.cat([cond, uncond]).to(prior.dtype),
        ).sample.float()
        out_cond, out_uncond = both.chunk(2)
        guided = out_uncond + guidance_scale * (out_cond - out_uncond)
        latents = scheduler.step(guided, t, latents).prev_sample
    return prior.decode(latents)
