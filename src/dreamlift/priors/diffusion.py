"""The frozen text-to-image prior: a Stable-Diffusion-style diffusers model behind one small interface.

Loaded with diffusers from a hub id or a local folder; every weight is frozen and the models are held as
plain attributes (not registered submodules of anything trainable), so they are never saved or optimised.
Latent models (with a VAE) and pixel-space models (``pixel_space=True``: the U-Net denoises images directly)
share the interface; epsilon- and v-prediction models both return epsilon from :meth:`predict_noise`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from dreamlift.errors import UsageError, first_line

REQUIRED_COMPONENTS = ("tokenizer", "text_encoder", "unet", "scheduler")


@dataclass
class PriorConfig:
    """Which diffusion model to distil, and how to run it."""

    model: str = "embedded"
    """A hub id (``org/name``), a local diffusers folder, or ``embedded`` for the model shipped with dreamlift."""
    pixel_space: bool = False
    """The U-Net works on images, not VAE latents (e.g. DeepFloyd IF stage 1); any VAE is ignored."""
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """Weights' precision; ``auto`` is float16 on CUDA and float32 on the CPU."""


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


class DiffusionPrior:
    """A frozen diffusion model: text encoding, image ↔ latent, and noise prediction.

    Attributes: ``tokenizer``, ``text_encoder``, ``unet``, ``vae`` (None in pixel space), ``scheduler``,
    ``alphas_cumprod`` (T, float32 on the device), ``image_size`` (pixels the model expects).
    """

    def __init__(self, components: dict, config: PriorConfig, device: torch.device, dtype: torch.dtype):
        self.config, self.device, self.dtype = config, device, dtype
        self.tokenizer = components["tokenizer"]
        self.text_encoder = components["text_encoder"].to(device)
        self.unet = components["unet"].to(device)
        vae = components.get("vae")
        self.vae = None if config.pixel_space or vae is None else vae.to(device)
        if not config.pixel_space and self.vae is None:
            raise UsageError(
                f"model '{config.model}' has no 'vae' component; set prior.pixel_space=true for a pixel-space model"
            )
        self.scheduler = components["scheduler"]
        for module in (self.text_encoder, self.unet, self.vae):
            if module is not None:
                module.requires_grad_(False).eval()
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(device, torch.float32)
        self.num_train_timesteps = int(self.scheduler.config.num_train_timesteps)
        self.prediction_type = self.scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise UsageError(
                f"model '{config.model}' predicts '{self.prediction_type}'; only epsilon and v_prediction are supported"
            )
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1) if self.vae is not None else 1
        self.image_size = int(self.unet.config.sample_size) * self.vae_scale

    def fingerprint(self) -> str:
        """Hex digest (16 characters) of the U-Net's and text encoder's weights: temporal layers are trained
        against exactly these, so a motion adapter records the fingerprint of the prior it was trained for."""
        digest = hashlib.sha256()
        for module in (self.unet, self.text_encoder):
            for name, tensor in sorted(module.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    # --- text -----------------------------------------------------------------------------------------------
    def _token_ids(self, prompts: list[str]) -> torch.Tensor:
        """Token ids N×L of each prompt, padded to the tokenizer's max length L."""
        return self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(self.device)

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Text-encoder hidden states for each prompt: N×L×D (L = the tokenizer's max length)."""
        return self.text_encoder(self._token_ids(prompts))[0]

    @torch.no_grad()
    def embed_tokens(self, prompts: list[str]) -> torch.Tensor:
        """The text encoder's input embedding of each token of each prompt, N×L×D, before any layer mixes them:
        every word of the vocabulary has its own vector here, even words the encoder never learned to use."""
        return self.text_encoder.get_input_embeddings()(self._token_ids(prompts))

    # --- images and latents ---------------------------------------------------------------------------------
    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images B×3×H×W in [0, 1] → what the U-Net denoises (latents B×4×h×w scaled, or images in [-1, 1]).

        Images are resized to the model's resolution. The gradient flows back to ``images``. The latents are
        drawn from the VAE's posterior with ``generator`` (on the CPU or the prior's device; None: the global
        one).
        """
        x = images.to(self.dtype) * 2 - 1
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False
            )
        if self.vae is None:
            return x
        return self.vae.encode(x).latent_dist.sample(generator) * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode_images`: B×C×h×w → images B×3×H×W in [0, 1] (float32)."""
        x = (
            latents
            if self.vae is None
            else self.vae.decode(latents.to(self.dtype) / self.vae.config.scaling_factor).sample
        )
        return ((x.float() + 1) / 2).clamp(0, 1)

    # --- noise ------------------------------------------------------------------------------------------------
    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward diffusion: √ᾱ_t·x + √(1−ᾱ_t)·ε, with t an integer timestep per batch item (B)."""
        a = self.alphas_cumprod[t].view(-1, *([1] * (clean.dim() - 1)))
        return a.sqrt() * clean + (1 - a).sqrt() * noise

    def clean_from_noise(self, noisy: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`add_noise` given the noise: x̂_0 = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t (B×…, t per item); with a
        predicted ε, the one-step denoised image."""
        a = self._alphas_like(t, noisy)
        return (noisy - (1 - a).sqrt() * noise) / a.sqrt()

    def _alphas_like(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t (B) shaped to broadcast over ``like`` (B×…)."""
        return self.alphas_cumprod[t].view(-1, *([1] * (like.dim() - 1)))

    def training_target(self, clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the model learns to predict for ``clean`` noised with ``noise`` at t: ε, or for a v-prediction
        model v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0 (B×…, any number of trailing dimensions)."""
        if self.prediction_type != "v_prediction":
            return noise
        a = self._alphas_like(t, clean)
        return a.sqrt() * noise - (1 - a).sqrt() * clean

    def noise_from_output(self, out: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A model output read as ε: itself, or for a v-prediction model ε = √ᾱ_t·v + √(1−ᾱ_t)·x_t (float32)."""
        if self.prediction_type != "v_prediction":
            return out
        a = self._alphas_like(t, out)
        return a.sqrt() * out + (1 - a).sqrt() * noisy.float()

    @torch.no_grad()
    def predict_noise(self, noisy: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The model's ε for noisy inputs (B×C×h×w) at timesteps t (B) given text states (B×L×D); float32
        (a v-prediction model's output converted by :meth:`noise_from_output`)."""
        out = self.unet(noisy.to(self.dtype), t, encoder_hidden_states=text.to(self.dtype)).sample.float()
        return self.noise_from_output(out, noisy, t)

    def predict_noise_cfg(
        self, noisy: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Classifier-free guidance in diffusers' form ε̂ = ε_u + s·(ε_c − ε_u), in one batched U-Net call.

        Returns (ε̂, ε_c, ε_u), each B×C×h×w.
        """
        both = self.predict_noise(torch.cat([noisy, noisy]), torch.cat([t, t]), torch.cat([cond, uncond]))
        eps_cond, eps_uncond = both.chunk(2)
        return classifier_free_guidance(eps_cond, eps_uncond, scale), eps_cond, eps_uncond


def classifier_free_guidance(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance in diffusers' form: uncond + s·(cond − uncond), of any two model outputs."""
    return uncond + scale * (cond - uncond)


@contextlib.contextmanager
def quiet_libraries():
    """Silence diffusers' and transformers' progress bars and advisory warnings while loading."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        diffusers_logging.set_verbosity(levels[0])
        transformers_logging.set_verbosity(levels[1])
        diffusers_logging.enable_progress_bar()
        transformers_logging.enable_progress_bar()


def looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).exists()


def load_prior(config: PriorConfig, model_path: str | Path, device: torch.device) -> DiffusionPrior:
    """Load the model at ``model_path`` (a folder or a hub id) with diffusers; every failure is a
    :class:`UsageError`."""
    from diffusers import DiffusionPipeline

    name = str(model_path)
    local = not looks_like_hub_id(name)
    if local:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise UsageError(f"model folder not found: {folder}")
        index = folder / "model_index.json"
        if not index.is_file():
            raise UsageError(f"{folder} is not a diffusers model folder (no model_index.json)")
        try:
            listed = json.loads(index.read_text())
        except json.JSONDecodeError:
            raise UsageError(f"{index} is not valid JSON") from None
        needed = REQUIRED_COMPONENTS + (() if config.pixel_space else ("vae",))
        for component in needed:
            if listed.get(component, [None])[0] is None or not (folder / component).is_dir():
                raise UsageError(f"model {folder} has no '{component}' component")
    dtype = _resolve_dtype(config.dtype, device)
    skipped = {"safety_checker": None, "feature_extractor": None}
    if config.pixel_space:
        skipped["vae"] = None
    try:
        with quiet_libraries():
            pipeline = DiffusionPipeline.from_pretrained(name, dtype=dtype, local_files_only=local, **skipped)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:
        where = "folder" if local else "hub id (is the hub reachable, or the model in the local cache?)"
        raise UsageError(f"cannot load model {name} from {where}: {first_line(err)}") from None
    components = dict(pipeline.components)
    for component in REQUIRED_COMPONENTS:
        if components.get(component) is None:
            raise UsageError(f"model {name} has no '{component}' component")
    return DiffusionPrior(components, config, device, dtype)
