"""Variational score distillation (ProlificDreamer, Wang et al. 2023); entropic score distillation (guidance/esd.py)
is a variant of it.

VSD learns the score of the current 3D distribution with a LoRA of the prior's U-Net (peft, on the attention
projections), conditioned on the camera by a learned embedding of its camera-to-world matrix added to the
U-Net's timestep embedding. Both start at zero, so the LoRA model starts as the prior itself. Each step:

- the renders' gradient is w(t)·(ε̂_prior − ε_LoRA(x_t, t, y, c)), ε̂_prior with CFG (or Perp-Neg);
- the LoRA takes ``vsd.lora_steps`` steps of the ordinary diffusion loss on the detached renders, with its
  own AdamW and learning rate, the camera condition dropped (zeros) for a fraction of samples.

Epsilon- and v-prediction priors both work: the LoRA is trained on the prior's own target, and its prediction is
read as ε the same way the prior's is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from dreamlift.guidance.base import Guidance, NoisedLatents
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.scene.cameras import Cameras
from dreamlift.timing import PhaseTimer

if TYPE_CHECKING:
    from dreamlift.guidance.config import GuidanceConfig


@dataclass
class VSDConfig:
    """The LoRA score model of VSD and ESD."""

    lora_rank: int = 4
    """Rank of the LoRA on the U-Net's attention projections (to_q, to_k, to_v, to_out)."""
    lora_lr: float = 1e-3
    """AdamW learning rate of the LoRA and the camera embedding (their own optimiser)."""
    lora_steps: int = 1
    """LoRA updates per guidance step, on the detached renders."""
    camera_dropout: float = 0.1
    """Fraction of LoRA training samples whose camera condition is dropped (zeros), so the LoRA also learns
    the unconditioned score ESD needs."""

    def __post_init__(self):
        if self.lora_rank <= 0:
            raise ValueError("lora_rank must be > 0")
        if self.lora_lr <= 0 or self.lora_steps < 0:
            raise ValueError("lora_lr must be > 0 and lora_steps >= 0")
        if not 0 <= self.camera_dropout < 1:
            raise ValueError("camera_dropout must lie in [0, 1)")


LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
"""The U-Net's attention projections that carry the LoRA."""


class CameraEmbedding(nn.Module):
    """Camera-to-world matrices B×4×4 → an addition B×D to the U-Net's timestep embedding; starts at zero."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, dim), nn.SiLU(), nn.Linear(dim, dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, c2w: torch.Tensor) -> torch.Tensor:
        return self.net(c2w.flatten(1))


class VSDGuidance(Guidance):
    """VSD (entropy_weight 0) or ESD (entropy_weight λ > 0) on renders B×3×H×W in [0, 1]."""

    adapter_name = "dreamlift_vsd"

    def __init__(self, config: GuidanceConfig, prior: DiffusionPrior, entropy_weight: float = 0.0):
        from peft import LoraConfig

        super().__init__(config, prior)
        self.entropy_weight = entropy_weight
        self._closed = False
        unet, rank = prior.unet, config.vsd.lora_rank
        unet.add_adapter(
            LoraConfig(r=rank, lora_alpha=rank, target_modules=LORA_TARGETS), adapter_name=self.adapter_name
        )
        self.lora_parameters = [p for name, p in unet.named_parameters() if self.adapter_name in name]
        for p in self.lora_parameters:
            p.data = p.data.float()
            p.requires_grad_(True)
        unet.disable_adapters()
        self.camera_embedding = CameraEmbedding(unet.time_embedding.linear_2.out_features).to(prior.device)
        self._camera: torch.Tensor | None = None
        self._hook = unet.time_embedding.register_forward_hook(self._add_camera)
        self.optimizer = torch.optim.AdamW(
            [*self.lora_parameters, *self.camera_embedding.parameters()], lr=config.vsd.lora_lr
        )

    def _add_camera(self, module, inputs, output: torch.Tensor) -> torch.Tensor:
        if self._camera is None:
            return output
        return output + self.camera_embedding(self._camera).to(output.dtype)

    @contextlib.contextmanager
    def lora(self, c2w: torch.Tensor) -> Iterator[None]:
        """Inside the block the U-Net is the LoRA model conditioned on cameras ``c2w`` (B×4×4; zeros: none)."""
        self.prior.unet.enable_adapters()
        self._camera = c2w.float()
        try:
            yield
        finally:
            self._camera = None
            self.prior.unet.disable_adapters()

    def lora_output(self, noisy: torch.Tensor, t: torch.Tensor, text: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
        """The LoRA model's raw output (ε or v, as the prior predicts) B×C×h×w, float32, with gradient."""
        with self.lora(c2w):
            prior = self.prior
            return prior.unet(noisy.to(prior.dtype), t, encoder_hidden_states=text.to(prior.dtype)).sample.float()

    def lora_noise(self, noisy: torch.Tensor, t: torch.Tensor, text: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
        """ε_LoRA(x_t, t, y, c) B×C×h×w (a v-prediction read as ε like the prior's), without gradient."""
        with torch.no_grad():
            out = self.lora_output(noisy, t, text, c2w)
        return self.prior.noise_from_output(out, noisy, t)

    def gradient(
        self,
        x: NoisedLatents,
        cameras: Cameras,
        prompts: PromptEmbeddings,
        progress: float,
        generator: torch.Generator | None,
        timer: PhaseTimer,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """w(t)·(ε̂_prior − ε_LoRA); then the LoRA's own update on the detached latents."""
        with timer("unet"):
            eps = self.predictions(x.noisy, x.t, cameras, prompts, progress)
        grad = self.weight(x.t).view(-1, 1, 1, 1) * (eps["prior"] - eps["lora"])
        cond, _ = prompts.for_cameras(cameras.azimuth, cameras.elevation)
        with timer("lora"):
            lora_loss = self.train_lora(x.latents.detach(), cond, cameras.c2w.to(self.prior.device), generator)
        return grad, {"lora_loss": lora_loss}

    def predictions(
        self, noisy: torch.Tensor, t: torch.Tensor, cameras: Cameras, prompts: PromptEmbeddings, progress: float
    ) -> dict[str, torch.Tensor]:
        """The prior's guided ε̂ and the LoRA's score ε_LoRA (for ESD, λ·ε_LoRA(no camera) + (1 − λ)·ε_LoRA(camera))."""
        cond, _ = prompts.for_cameras(cameras.azimuth, cameras.elevation)
        c2w = cameras.c2w.to(self.prior.device)
        eps_lora = self.lora_noise(noisy, t, cond, c2w)
        if self.entropy_weight > 0:
            eps_free = self.lora_noise(noisy, t, cond, torch.zeros_like(c2w))
            eps_lora = self.entropy_weight * eps_free + (1 - self.entropy_weight) * eps_lora
        prior_noise = self.guided_noise(noisy, t, cameras, prompts, self.config.scale_at(progress))
        return {"prior": prior_noise, "lora": eps_lora}

    def lora_loss(
        self, latents: torch.Tensor, text: torch.Tensor, c2w: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """The diffusion loss of the LoRA model on clean latents B×C×h×w (t over the whole range, camera dropout)."""
        prior, batch = self.prior, latents.shape[0]
        t = torch.randint(0, prior.num_train_timesteps, (batch,), device=prior.device, generator=generator)
        noise = torch.randn(latents.shape, device=prior.device, generator=generator)
        keep = torch.rand(batch, device=prior.device, generator=generator) >= self.config.vsd.camera_dropout
        c2w = c2w * keep.view(-1, 1, 1).to(c2w.dtype)
        noisy = prior.add_noise(latents, noise, t)
        return F.mse_loss(self.lora_output(noisy, t, text, c2w), prior.training_target(latents, noise, t))

    def train_lora(
        self, latents: torch.Tensor, text: torch.Tensor, c2w: torch.Tensor, generator: torch.Generator | None
    ) -> float:
        """``vsd.lora_steps`` optimiser steps of :meth:`lora_loss`; returns the last loss (NaN if no step)."""
        value = float("nan")
        for _ in range(self.config.vsd.lora_steps):
            loss = self.lora_loss(latents, text, c2w, generator)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            value = loss.item()
        return value

    def state_dict(self) -> dict:
        from peft.utils import get_peft_model_state_dict

        return {
            "lora": get_peft_model_state_dict(self.prior.unet, adapter_name=self.adapter_name),
            "camera_embedding": self.camera_embedding.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        from peft.utils import set_peft_model_state_dict

        set_peft_model_state_dict(self.prior.unet, state["lora"], adapter_name=self.adapter_name)
        self.camera_embedding.load_state_dict(state["camera_embedding"])
        self.optimizer.load_state_dict(state["optimizer"])

    def close(self) -> None:
        """Remove the camera hook and the LoRA from the prior's U-Net."""
        if self._closed:
            return
        self._closed = True
        self._hook.remove()
        self.prior.unet.delete_adapters(self.adapter_name)
