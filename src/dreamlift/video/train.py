"""Training of temporal layers on clips, the image prior frozen (the Video LDM / AnimateDiff recipe).

Stages, each checkpointed in the work folder and skipped once done, so an interrupted run resumes:

1. ``data``: the clips — procedural motion clips of the embedded prior's objects, or a folder of captioned videos.
2. ``latents``: every frame encoded once by the prior's frozen VAE (posterior mean and std).
3. ``temporal``: a zero-initialised :class:`TemporalAdapter` trained on the diffusion loss of whole clips (one
   timestep per clip, min-SNR weighting plus the implied clean clip's error, caption dropout for CFG, clips played
   backwards with the opposite motion word); the U-Net, VAE and text encoder never change.
4. ``export``: the adapter folder (``--motion-adapter`` loads it) and ``training.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from tqdm import tqdm

from dreamlift.config import dump_yaml
from dreamlift.errors import UsageError
from dreamlift.io import load_torch, save_torch, write_text
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.runtime import check_seed
from dreamlift.training.clips import read_clip_folder, reversed_caption
from dreamlift.training.latents import draw_latents, encode_posteriors
from dreamlift.training.schedules import clean_sample_weights, min_snr_weights, set_warmup_cosine_lr
from dreamlift.training.staged import StagedTrainer
from dreamlift.video.inflation import InflatedUNet
from dreamlift.video.temporal import TemporalAdapter, load_temporal_adapter


@dataclass
class TrainMotionConfig:
    """Settings of a temporal-layer training run."""

    data: str = "procedural"
    """'procedural' (motion clips of the embedded prior's objects) or a folder of videos with .txt captions."""
    seed: int = 0
    """Seed of the procedural clips, the initialisation and the batches, in [0, 2**32)
    (:data:`dreamlift.runtime.SEED_LIMIT`)."""
    num_clips: int = 1200
    """Number of procedural clips (ignored for a clip folder)."""
    num_frames: int = 8
    """Frames per training clip; sampling uses windows of this length for longer clips."""
    steps: int = 2000
    batch: int = 4
    """Clips per step (each of num_frames frames)."""
    lr: float = 5e-4
    """Peak AdamW learning rate (linear warm-up, cosine decay to a tenth)."""
    caption_dropout: float = 0.1
    """Fraction of captions replaced by the empty prompt, so classifier-free guidance works."""
    min_snr_gamma: float = 5.0
    """Min-SNR loss weighting; 0 disables it."""
    num_attention_heads: int = 4
    """Heads of each temporal attention (must divide every block width)."""
    text_attention: bool = True
    """Give the temporal layers a cross-attention to the prompt, so motion words steer motion directly."""
    prompt_embedding_dim: int = 128
    """Width of the pooled prompt vector that every temporal layer adds to its frame tokens (0: none; needs
    text_attention). It gives the motion words a direct route to every layer."""
    prompt_frame_basis: int = 2
    """Cosine basis functions over the frames whose weights the prompt vector sets (1: one vector for all frames;
    2: also a ramp from the first frame to the last, so the prompt can say which way along time things change)."""
    prompt_reads_tokens: bool = True
    """The prompt pooling also reads the text encoder's token embeddings, where every word is distinct even when
    the encoder never learned it (the embedded prior's encoder maps "right", "up" and "down" to near-identical
    states). With init_from, layers without this route get it added, starting at zero."""
    checkpoint_every: int = 100
    """Steps between checkpoints."""
    clean_weight_cap: float = 20.0
    """Add the error of the implied clean clip (ε-MSE / SNR) to the loss, capped at this weight (0: off). An ε
    loss hardly sees the clean clip at high noise, which is where only the prompt says which way things move."""
    timestep_bias: float = 1.0
    """Training timesteps t = ⌊T·(1 − u^k)⌋, u uniform, with k this bias: 1 is uniform, above 1 favours high noise,
    where only the prompt can say which way things move."""
    time_reversal: float = 0.5
    """Fraction of clips played backwards, with their caption's motion phrase replaced by its opposite ("moving
    left" ↔ "moving right", "growing" ↔ "shrinking"; clips without such a phrase are never reversed). The same
    frames then come with both words, so only the prompt can tell the layers which way to move."""
    trainable: Literal["all", "prompt"] = "all"
    """Which layers train: 'all', or 'prompt' (only the prompt pooling and the per-layer prompt projections, the
    temporal transformers frozen): teaches layers that already move things to tell motion words apart, without
    touching how they move them (used with init_from)."""
    init_from: str = ""
    """Temporal layers to start from (a folder, hub id or AnimateDiff file, as --motion-adapter); empty:
    zero-initialised."""

    def __post_init__(self):
        check_seed(self.seed)
        for name in ("num_clips", "num_frames", "steps", "batch", "checkpoint_every", "num_attention_heads"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if not 0 <= self.caption_dropout < 1:
            raise ValueError("caption_dropout must lie in [0, 1)")
        if not 0 <= self.time_reversal <= 1:
            raise ValueError("time_reversal must lie in [0, 1]")
        if self.prompt_embedding_dim < 0:
            raise ValueError("prompt_embedding_dim must be ≥ 0")
        if self.prompt_frame_basis < 1:
            raise ValueError("prompt_frame_basis must be ≥ 1")
        if self.prompt_embedding_dim and not self.text_attention:
            raise ValueError("prompt_embedding_dim needs text_attention=true (or set prompt_embedding_dim=0)")
        if self.prompt_reads_tokens and not self.prompt_embedding_dim:
            raise ValueError("prompt_reads_tokens needs prompt_embedding_dim > 0 (or set prompt_reads_tokens=false)")
        if self.lr <= 0:
            raise ValueError("lr must be > 0")
        if self.clean_weight_cap < 0:
            raise ValueError("clean_weight_cap must be ≥ 0")
        if self.timestep_bias <= 0:
            raise ValueError("timestep_bias must be > 0")
        if self.trainable not in ("all", "prompt"):
            raise ValueError(f"trainable must be 'all' or 'prompt', got {self.trainable!r}")
        if self.trainable == "prompt" and not self.prompt_embedding_dim:
            raise ValueError("trainable=prompt needs a prompt embedding (prompt_embedding_dim > 0)")


class MotionTrainer(StagedTrainer):
    """Trains temporal layers for ``prior`` inside ``work`` and exports them to ``out``."""

    stages = ("data", "latents", "temporal", "export")

    def __init__(self, config: TrainMotionConfig, prior: DiffusionPrior, work: Path, out: Path, device: str = "cpu"):
        super().__init__(work, config.seed, config.checkpoint_every, device)
        if prior.vae is None:
            raise UsageError("temporal-layer training needs a latent prior (with a VAE)")
        self.config, self.prior, self.out = config, prior, Path(out)
        self.train_longer("temporal", config.steps, dependents=("export",))

    def run(self) -> None:
        write_text(self.work / "config.yaml", dump_yaml(self.config))
        super().run()

    def stage_data(self) -> dict:
        size = self.prior.image_size
        if self.config.data == "procedural":
            from dreamlift.embedded.motions import render_motion_clips

            chunk, parts = 50, []
            for start in tqdm(range(0, self.config.num_clips, chunk), desc="render clips", unit="chunk"):
                count = min(chunk, self.config.num_clips - start)
                seed = self.config.seed * 100003 + start
                parts.append(render_motion_clips(count, self.config.num_frames, seed, size, self.device))
            frames, captions = torch.cat([p.frames for p in parts]), [c for p in parts for c in p.captions]
        else:
            clips = read_clip_folder(Path(self.config.data), self.config.num_frames, size)
            frames, captions = clips.frames, clips.captions
        save_torch(self.work / "data.pt", {"frames": frames, "captions": captions})
        return {"clips": len(captions)}

    @torch.no_grad()
    def stage_latents(self) -> dict:
        data = load_torch(self.work / "data.pt")
        frames = data["frames"].flatten(0, 1)  # (N·F)×3×H×W uint8
        mean, std = encode_posteriors(self.prior.vae, frames, self.device, self.prior.dtype, desc="encode frames")
        shape = (len(data["captions"]), self.config.num_frames, *mean.shape[1:])
        save_torch(self.work / "latents.pt", {"mean": mean.reshape(shape), "std": std.reshape(shape)})
        return {"frames": len(frames)}

    def make_adapter(self) -> TemporalAdapter:
        """The layers to train: loaded from ``init_from`` (given the token-embedding route if asked for), or
        zero-initialised to fit the prior's U-Net."""
        if self.config.init_from:
            adapter = load_temporal_adapter(self.config.init_from)
            adapter.check_fits(self.prior.unet)
            if self.config.prompt_reads_tokens:
                adapter = adapter.with_prompt_tokens()
            adapter.register_to_config(trained_frames=self.config.num_frames)
            return adapter
        return TemporalAdapter.for_unet(
            self.prior.unet,
            text_attention=self.config.text_attention,
            prompt_embedding_dim=self.config.prompt_embedding_dim or None,
            prompt_frame_basis=self.config.prompt_frame_basis,
            prompt_reads_tokens=self.config.prompt_reads_tokens,
            num_attention_heads=self.config.num_attention_heads,
            trained_frames=self.config.num_frames,
        )

    def stage_temporal(self) -> dict:
        torch.manual_seed(self.config.seed + 1)
        config, prior = self.config, self.prior
        captions = load_torch(self.work / "data.pt")["captions"]
        backwards = [reversed_caption(c) for c in captions]
        latents = load_torch(self.work / "latents.pt")
        scaling = prior.vae.config.scaling_factor
        adapter = self.make_adapter().to(self.device).train()
        trained = list(adapter.parameters()) if config.trainable == "all" else adapter.prompt_route_parameters()
        adapter.requires_grad_(False)
        for parameter in trained:
            parameter.requires_grad_(True)
        inflated = InflatedUNet(prior.unet, adapter, window=config.num_frames)
        optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=1e-2)

        def step_fn(step: int, generator: torch.Generator) -> torch.Tensor:
            set_warmup_cosine_lr(optimizer, config.lr, step, config.steps)
            b = config.batch
            index = torch.randint(len(captions), (b,), generator=generator)
            z0 = draw_latents(latents["mean"], latents["std"], index, scaling, generator)  # B×F×C×h×w
            reverse = (torch.rand(b, generator=generator) < config.time_reversal).tolist()
            reverse = [flip and backwards[i] is not None for i, flip in zip(index.tolist(), reverse)]
            batch_captions = [backwards[i] if flip else captions[i] for i, flip in zip(index.tolist(), reverse)]
            z0 = torch.where(torch.tensor(reverse)[:, None, None, None, None], z0.flip(1), z0).permute(0, 2, 1, 3, 4)
            noise = torch.randn(z0.shape, generator=generator)
            u = torch.rand(b, generator=generator)
            t = (
                ((1 - u**config.timestep_bias) * prior.num_train_timesteps)
                .long()
                .clamp(max=prior.num_train_timesteps - 1)
            )
            dropped = (torch.rand(b, generator=generator) < config.caption_dropout).tolist()
            batch_captions = ["" if drop else text for text, drop in zip(batch_captions, dropped)]
            z0, noise, t = z0.to(self.device), noise.to(self.device), t.to(self.device)
            noisy = prior.add_noise(z0, noise, t)
            target = prior.training_target(z0, noise, t)
            text, tokens = prior.encode_text(batch_captions), prior.embed_tokens(batch_captions)
            pred = inflated(noisy.to(prior.dtype), t, text, tokens).float()
            per_clip = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3, 4))
            weights = min_snr_weights(prior.alphas_cumprod, t, config.min_snr_gamma, prior.prediction_type)
            if config.clean_weight_cap > 0:
                weights = weights + clean_sample_weights(
                    prior.alphas_cumprod, t, config.clean_weight_cap, prior.prediction_type
                )
            return (per_clip * weights).mean()

        try:
            loss = self.train_loop("temporal", {"adapter": adapter}, optimizer, config.steps, step_fn)
        finally:
            inflated.remove()
        adapter.save_pretrained(self.work / "adapter")
        return {"final_loss": round(loss, 5), "steps": config.steps}

    def stage_export(self) -> dict:
        adapter = TemporalAdapter.from_pretrained(self.work / "adapter")
        adapter.save_pretrained(self.out)
        summary = {
            "hardware": self.log["hardware"],
            "prior": self.prior.config.model,
            "prior_fingerprint": self.prior.fingerprint(),
            "config": json.loads(json.dumps(vars(self.config), default=list)),
            "parameters": sum(p.numel() for p in adapter.parameters()),
            "stages": self.log["stages"],
        }
        write_text(self.out / "training.json", json.dumps(summary, indent=2))
        return {}
