"""Training of the embedded prior: a small latent diffusion model in Stable Diffusion's diffusers format.

Stages, each checkpointed in the work folder and skipped once done, so an interrupted run resumes (and a
finished run given more ``unet_steps`` or ``judge_steps`` trains that stage on from where it ended):

1. ``data``: render the procedural dataset (images + captions) and cache it.
2. ``vae``: an AutoencoderKL, 64×64×3 → 16×16×4, without mid-block attention.
3. ``latents``: encode the dataset once; the VAE's scaling factor is 1 / std of the latents.
4. ``unet``: a UNet2DConditionModel (attention only below full resolution) and a small CLIPTextModel trained
   jointly on the diffusion loss (epsilon prediction, min-SNR weighting, 10% caption dropout for CFG, EMA).
5. ``judge``: the independent colour/shape classifier (see judge.py).
6. ``export``: the diffusers folder (``from_pretrained`` loads it offline), the judge, and ``training.json``.

Run ``text3d train-prior --out DIR`` (see ``--help``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm
from transformers import CLIPTextConfig, CLIPTextModel

from dreamlift.config import dump_yaml
from dreamlift.embedded.judge import ShapeJudge, augment
from dreamlift.embedded.shapes import sample_shapes
from dreamlift.embedded.tokenizer import MAX_LENGTH, build_tokenizer
from dreamlift.io import load_torch, save_torch, write_text
from dreamlift.runtime import check_seed
from dreamlift.training.latents import draw_latents, encode_posteriors
from dreamlift.training.schedules import min_snr_weights, set_warmup_cosine_lr
from dreamlift.training.staged import StagedTrainer


@dataclass
class TrainPriorConfig:
    """Settings of the embedded prior's training run; the defaults are the shipped model's recipe."""

    seed: int = 0
    """Seed of the dataset, the initialisation and the batches, in [0, 2**32)
    (:data:`dreamlift.runtime.SEED_LIMIT`)."""
    num_images: int = 8000
    """Size of the procedural dataset."""
    resolution: int = 64
    """Image size in pixels."""
    vae_channels: tuple[int, ...] = (16, 32, 32)
    """AutoencoderKL block widths; len - 1 downsamplings (3 blocks: 64 → 16)."""
    vae_steps: int = 6000
    vae_batch: int = 64
    vae_lr: float = 1e-3
    """Peak AdamW learning rate of the VAE (linear warm-up, cosine decay to a tenth)."""
    vae_kl_weight: float = 1e-6
    """Weight of the KL term against the L1 + L2 reconstruction loss."""
    unet_channels: tuple[int, ...] = (32, 64, 128)
    """U-Net block widths; the first (full-resolution) level has no attention."""
    unet_layers_per_block: int = 1
    text_width: int = 64
    """Hidden size of the text encoder, and the U-Net's cross-attention width."""
    text_layers: int = 2
    unet_steps: int = 10000
    unet_batch: int = 64
    unet_lr: float = 4e-4
    caption_dropout: float = 0.1
    """Fraction of captions replaced by the empty prompt, so classifier-free guidance works."""
    min_snr_gamma: float = 5.0
    """Min-SNR loss weighting (Hang et al. 2023); 0 disables it."""
    ema_decay: float = 0.998
    judge_steps: int = 800
    judge_batch: int = 64
    judge_eval_images: int = 600
    """Fresh images (another seed) on which the judge's accuracy is measured and recorded."""
    checkpoint_every: int = 250
    """Steps between checkpoints inside a stage."""

    def __post_init__(self):
        check_seed(self.seed)
        for name in ("num_images", "vae_steps", "unet_steps", "judge_steps", "judge_eval_images", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if not 0 <= self.caption_dropout < 1:
            raise ValueError("caption_dropout must lie in [0, 1)")


def make_vae(config: TrainPriorConfig) -> AutoencoderKL:
    blocks = len(config.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=config.vae_channels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=config.resolution,
        mid_block_add_attention=False,
    )


def make_text_encoder(config: TrainPriorConfig, vocab_size: int) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=config.text_width,
            intermediate_size=4 * config.text_width,
            num_hidden_layers=config.text_layers,
            num_attention_heads=4,
            max_position_embeddings=MAX_LENGTH,
            projection_dim=config.text_width,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )


def make_unet(config: TrainPriorConfig, latent_size: int) -> UNet2DConditionModel:
    levels = len(config.unet_channels)
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=4,
        out_channels=4,
        layers_per_block=config.unet_layers_per_block,
        block_out_channels=config.unet_channels,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
        cross_attention_dim=config.text_width,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def make_noise_scheduler() -> DDPMScheduler:
    """Stable Diffusion's training schedule: 1000 steps, scaled-linear betas, epsilon prediction."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False
    )


def make_sampling_scheduler(prediction_type: str = "epsilon") -> DDIMScheduler:
    """The scheduler shipped with a model: DDIM on the training schedule."""
    return DDIMScheduler.from_config(
        make_noise_scheduler().config, set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type
    )


def save_diffusers_folder(folder: Path, vae, text_encoder, tokenizer, unet, scheduler) -> None:
    """Write the components as a Stable Diffusion folder that ``from_pretrained`` loads (no safety checker)."""
    StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder)


class PriorTrainer(StagedTrainer):
    """Runs the stages in order inside ``work`` and exports the result to ``out``."""

    stages = ("data", "vae", "latents", "unet", "judge", "export")

    def __init__(self, config: TrainPriorConfig, work: Path, out: Path, device: str = "cpu"):
        super().__init__(work, config.seed, config.checkpoint_every, device)
        self.config, self.out = config, out
        self.tokenizer = build_tokenizer()
        self.train_longer("unet", config.unet_steps, dependents=("export",))
        self.train_longer("judge", config.judge_steps, dependents=("export",))

    def run(self) -> None:
        write_text(self.work / "config.yaml", dump_yaml(self.config))
        super().run()

    # --- stages -------------------------------------------------------------------------------------------
    def stage_data(self) -> dict:
        chunk, images, labels, captions = 500, [], [], []
        for start in tqdm(range(0, self.config.num_images, chunk), desc="render dataset", unit="chunk"):
            batch = sample_shapes(
                min(chunk, self.config.num_images - start),
                self.config.seed * 100003 + start,
                resolution=self.config.resolution,
                device=self.device,
            )
            images.append((batch.images * 255).round().to(torch.uint8))
            labels.append(torch.stack([batch.colour, batch.shape, batch.view], dim=1))
            captions += batch.captions
        save_torch(
            self.work / "data.pt", {"images": torch.cat(images), "labels": torch.cat(labels), "captions": captions}
        )
        return {"images": self.config.num_images}

    def _data(self) -> dict:
        return load_torch(self.work / "data.pt")

    def stage_vae(self) -> dict:
        torch.manual_seed(self.config.seed)
        images = self._data()["images"]
        vae = make_vae(self.config).to(self.device).train()
        optimizer = torch.optim.AdamW(vae.parameters(), lr=self.config.vae_lr, weight_decay=0.0)

        def step_fn(step: int, generator: torch.Generator) -> torch.Tensor:
            set_warmup_cosine_lr(optimizer, self.config.vae_lr, step, self.config.vae_steps)
            index = torch.randint(len(images), (self.config.vae_batch,), generator=generator)
            x = images[index].to(self.device).float() / 127.5 - 1
            posterior = vae.encode(x).latent_dist
            recon = vae.decode(posterior.sample()).sample
            kl = posterior.kl().mean() / x[0].numel()
            return F.l1_loss(recon, x) + F.mse_loss(recon, x) + self.config.vae_kl_weight * kl

        loss = self.train_loop("vae", {"vae": vae}, optimizer, self.config.vae_steps, step_fn)
        vae.save_pretrained(self.work / "vae")
        return {"final_loss": round(loss, 5), "steps": self.config.vae_steps}

    @torch.no_grad()
    def stage_latents(self) -> dict:
        vae = AutoencoderKL.from_pretrained(self.work / "vae").to(self.device).eval()
        mean, std = encode_posteriors(vae, self._data()["images"], self.device, desc="encode latents")
        scaling = 1.0 / mean.std().item()
        save_torch(self.work / "latents.pt", {"mean": mean, "std": std, "scaling_factor": scaling})
        return {"scaling_factor": round(scaling, 5)}

    def stage_unet(self) -> dict:
        torch.manual_seed(self.config.seed + 1)
        data, latents = self._data(), load_torch(self.work / "latents.pt")
        tokens = self.tokenizer(
            data["captions"] + [""], padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt"
        ).input_ids
        empty = tokens[-1]
        tokens = tokens[:-1]
        text_encoder = make_text_encoder(self.config, len(self.tokenizer)).to(self.device).train()
        unet = make_unet(self.config, latents["mean"].shape[-1]).to(self.device).train()
        ema = AveragedModel(
            torch.nn.ModuleDict({"unet": unet, "text_encoder": text_encoder}),
            multi_avg_fn=get_ema_multi_avg_fn(self.config.ema_decay),
        )
        scheduler = make_noise_scheduler()
        alphas_cumprod = scheduler.alphas_cumprod.to(self.device)
        params = list(unet.parameters()) + list(text_encoder.parameters())
        optimizer = torch.optim.AdamW(params, lr=self.config.unet_lr, weight_decay=1e-2)
        warmup = 200

        def step_fn(step: int, generator: torch.Generator) -> torch.Tensor:
            if step > 0:
                ema.update_parameters(torch.nn.ModuleDict({"unet": unet, "text_encoder": text_encoder}))
            set_warmup_cosine_lr(optimizer, self.config.unet_lr, step, self.config.unet_steps, warmup)
            b = self.config.unet_batch
            index = torch.randint(len(tokens), (b,), generator=generator)
            z0 = draw_latents(latents["mean"], latents["std"], index, latents["scaling_factor"], generator)
            ids = tokens[index].clone()
            ids[torch.rand(b, generator=generator) < self.config.caption_dropout] = empty
            noise = torch.randn(z0.shape, generator=generator)
            t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator)
            z0, noise, t, ids = z0.to(self.device), noise.to(self.device), t.to(self.device), ids.to(self.device)
            noisy = scheduler.add_noise(z0, noise, t)
            states = text_encoder(ids).last_hidden_state
            pred = unet(noisy, t, encoder_hidden_states=states).sample
            per_sample = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
            return (per_sample * min_snr_weights(alphas_cumprod, t, self.config.min_snr_gamma)).mean()

        modules = {"unet": unet, "text_encoder": text_encoder, "ema": ema}
        loss = self.train_loop("unet", modules, optimizer, self.config.unet_steps, step_fn)
        ema.module["unet"].save_pretrained(self.work / "unet")
        ema.module["text_encoder"].save_pretrained(self.work / "text_encoder")
        return {"final_loss": round(loss, 5), "steps": self.config.unet_steps}

    def stage_judge(self) -> dict:
        torch.manual_seed(self.config.seed + 2)
        data = self._data()
        images, labels = data["images"], data["labels"]
        judge = ShapeJudge().to(self.device).train()
        optimizer = torch.optim.AdamW(judge.parameters(), lr=2e-3)

        def step_fn(step: int, generator: torch.Generator) -> torch.Tensor:
            index = torch.randint(len(images), (self.config.judge_batch,), generator=generator)
            x = augment(images[index].float() / 255, generator).to(self.device)
            colour_logits, shape_logits = judge(x)
            target = labels[index].to(self.device)
            return F.cross_entropy(colour_logits, target[:, 0]) + F.cross_entropy(shape_logits, target[:, 1])

        loss = self.train_loop("judge", {"judge": judge}, optimizer, self.config.judge_steps, step_fn)
        judge.cpu().save(self.work / "judge.safetensors")
        held_out = sample_shapes(
            self.config.judge_eval_images,
            seed=self.config.seed * 100003 + 10**8,
            resolution=self.config.resolution,
            device=self.device,
        )
        with torch.no_grad():
            colour_logits, shape_logits = ShapeJudge.load(self.work / "judge.safetensors")(held_out.images)
        correct = (colour_logits.argmax(-1) == held_out.colour) & (shape_logits.argmax(-1) == held_out.shape)
        accuracy = correct.float().mean().item()
        return {"final_loss": round(loss, 5), "held_out_accuracy": round(accuracy, 4)}

    def stage_export(self) -> dict:
        latents = load_torch(self.work / "latents.pt")
        vae = AutoencoderKL.from_pretrained(self.work / "vae")
        vae.register_to_config(scaling_factor=latents["scaling_factor"])
        save_diffusers_folder(
            self.out,
            vae,
            CLIPTextModel.from_pretrained(self.work / "text_encoder"),
            self.tokenizer,
            UNet2DConditionModel.from_pretrained(self.work / "unet"),
            make_sampling_scheduler(),
        )
        judge = ShapeJudge.load(self.work / "judge.safetensors")
        judge.save(self.out / "judge.safetensors")
        summary = {
            "hardware": self.log["hardware"],
            "config": json.loads(json.dumps(vars(self.config), default=list)),
            "stages": self.log["stages"],
        }
        write_text(self.out / "training.json", json.dumps(summary, indent=2))
        return {}
