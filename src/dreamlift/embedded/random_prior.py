"""Randomly initialised priors with the embedded prior's architecture, at toy size.

Tests build them in fixtures (latent or pixel-space, epsilon or v-prediction), and text3d falls back on one,
with a warning that its output is meaningless, when the package carries no trained weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch

from dreamlift.embedded.tokenizer import build_tokenizer
from dreamlift.embedded.train import (
    TrainPriorConfig,
    make_sampling_scheduler,
    make_text_encoder,
    make_unet,
    make_vae,
    save_diffusers_folder,
)

TINY = TrainPriorConfig(vae_channels=(8, 8), unet_channels=(16, 32), text_width=32, text_layers=1, resolution=32)
"""Toy sizes: 32-pixel images, 16×16 latents; a CFG U-Net call takes milliseconds on a CPU."""
TINY_SD = TrainPriorConfig(
    vae_channels=(8, 8, 8, 8), unet_channels=(16, 32), text_width=32, text_layers=1, resolution=512
)
"""Stable Diffusion's image and latent sizes (512 px ↔ 64×64×4, the VAE's three downsamplings) at toy widths: what
the presets for SD-sized priors must fit."""


def build_random_prior(
    folder: Path,
    seed: int = 0,
    pixel_space: bool = False,
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon",
    sizes: TrainPriorConfig = TINY,
) -> Path:
    """Save a random diffusers model folder at ``folder`` and return it.

    Latent models get a VAE (with :data:`TINY`, 32 px ↔ 16×16×4); pixel-space models a U-Net on 3-channel 16×16
    images and no VAE.
    """
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    text_encoder = make_text_encoder(sizes, len(tokenizer))
    scheduler = make_sampling_scheduler(prediction_type)
    unet = make_unet(sizes, latent_size=sizes.resolution // 2 ** (len(sizes.vae_channels) - 1))
    if not pixel_space:
        save_diffusers_folder(folder, make_vae(sizes), text_encoder, tokenizer, unet, scheduler)
        return folder
    unet = type(unet).from_config({**unet.config, "in_channels": 3, "out_channels": 3})
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (
        ("tokenizer", tokenizer),
        ("text_encoder", text_encoder),
        ("unet", unet),
        ("scheduler", scheduler),
    ):
        part.save_pretrained(folder / name)
    index = {
        "_class_name": "StableDiffusionPipeline",
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "vae": [None, None],
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
