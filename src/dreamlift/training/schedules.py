"""Learning-rate schedules and per-sample loss weights of diffusion training (the prior and the motion adapter)."""

from __future__ import annotations

import math

import torch


def set_warmup_cosine_lr(
    optimizer: torch.optim.Optimizer, peak: float, step: int, steps: int, warmup: int | None = None
) -> None:
    """Set the learning rate of ``step`` (0-based) of ``steps``: linear warm-up to ``peak`` over ``warmup`` steps
    (default: a tenth of ``steps``, at most 100), then cosine decay to a tenth of ``peak`` at ``steps``."""
    warmup = warmup or min(100, steps // 10 + 1)
    cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))
    for group in optimizer.param_groups:
        group["lr"] = peak * min(1.0, (step + 1) / warmup) * cosine


def min_snr_weights(
    alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float, prediction_type: str = "epsilon"
) -> torch.Tensor:
    """Per-sample loss weights of min-SNR weighting (Hang et al. 2023): min(SNR, γ)/SNR for an ε target,
    min(SNR, γ)/(SNR + 1) for a v target; ones when γ is 0."""
    if gamma <= 0:
        return torch.ones(t.shape, device=alphas_cumprod.device)
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    return snr.clamp(max=gamma) / (snr + 1 if prediction_type == "v_prediction" else snr)


def clean_sample_weights(
    alphas_cumprod: torch.Tensor, t: torch.Tensor, cap: float, prediction_type: str = "epsilon"
) -> torch.Tensor:
    """Per-sample weights that turn the MSE of an ε (or v) target into the MSE of the clean sample it implies,
    1/SNR (or 1/(SNR + 1)), capped at ``cap``: large at high noise, where an ε loss barely sees the clean sample."""
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    return (1 / (snr + 1 if prediction_type == "v_prediction" else snr)).clamp(max=cap)
