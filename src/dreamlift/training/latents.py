"""Latents cached for diffusion training: a dataset encoded once by a frozen VAE, and draws from the cache.

Each image is stored as its VAE posterior's mean and standard deviation, so every training step can draw a fresh
latent from the posterior (as training on the images themselves would) without running the encoder again.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

ENCODE_BATCH = 256
"""Images encoded per VAE call."""


@torch.no_grad()
def encode_posteriors(
    vae, images: torch.Tensor, device: torch.device | str, dtype: torch.dtype = torch.float32, desc: str = "encode"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior mean and std (each N×C×h×w, float32, on the CPU) of images N×3×H×W (uint8) under ``vae``."""
    means, stds = [], []
    for start in tqdm(range(0, len(images), ENCODE_BATCH), desc=desc):
        x = images[start : start + ENCODE_BATCH].to(device, dtype) / 127.5 - 1
        posterior = vae.encode(x).latent_dist
        means.append(posterior.mean.float().cpu())
        stds.append(posterior.std.float().cpu())
    return torch.cat(means), torch.cat(stds)


def draw_latents(
    mean: torch.Tensor, std: torch.Tensor, index: torch.Tensor, scaling: float, generator: torch.Generator
) -> torch.Tensor:
    """Latents of items ``index`` drawn from their cached posteriors and scaled by the VAE's scaling factor
    (B×…, the shape of ``mean[index]``)."""
    mean, std = mean[index], std[index]
    return (mean + std * torch.randn(mean.shape, generator=generator)) * scaling
