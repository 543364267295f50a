"""text2video: sample short clips from an image prior, animated by temporal layers or zero-shot.

Modes:
- ``animate``: the prior's U-Net inflated with temporal layers (:class:`InflatedUNet`), sampled with the
  prior's scheduler and CFG over video latents B×C×F×h×w. Clips longer than the layers' trained length use
  FreeNoise: overlapping temporal windows blended inside the network, and the initial noise of later frames
  a shuffled repeat of the first window's noise.
- ``zero-shot`` (Text2Video-Zero): the plain U-Net; the first frame's latent is denoised a little, translated
  along a motion vector for each frame, re-noised, and all frames denoised with cross-frame attention.

Video i of a batch starts from the noise of seed + i, so ``--seed S+i --videos 1`` reproduces it alone.

Run folder layout (everything written atomically):
    config.yaml          the resolved config, prompt and seed included
    video.mp4, video.gif the clip (with --videos N > 1: video-0.mp4 … video-{N-1}.mp4 and the same .gif)
    frames/              PNG frames, when save_frames is set (frames/video-i/000.png …)
    metrics.json         seeds, timings
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dreamlift.config import dump_yaml
from dreamlift.errors import UsageError
from dreamlift.io import write_gif, write_json, write_png, write_text, write_video
from dreamlift.priors.diffusion import DiffusionPrior, quiet_libraries
from dreamlift.priors.sampling import denoise_with_cfg
from dreamlift.progress import Progress, ProgressCallback
from dreamlift.video.config import Text2VideoConfig
from dreamlift.video.inflation import InflatedUNet, resolve_window, run_per_frame
from dreamlift.video.temporal import TemporalAdapter
from dreamlift.video.zero_shot import cross_frame_attention, translate_latents


def step_done(progress: tqdm, callback: ProgressCallback | None) -> None:
    """One denoising step done: the bar moves and ``callback`` hears of it."""
    progress.update(1)
    if callback is not None:
        callback(Progress("text2video", progress.n, progress.total, title="denoising"))


def video_names(videos: int) -> list[str]:
    """File stems of the videos of a run: ``video`` alone, or ``video-0`` … ``video-{N-1}``."""
    return ["video"] if videos == 1 else [f"video-{i}" for i in range(videos)]


class VideoSampler:
    """Samples ``config.videos`` clips of ``config.prompt`` and writes them to ``run_dir``; after :meth:`run`,
    ``frames`` holds what it wrote (B×F×H×W×3 uint8)."""

    def __init__(self, config: Text2VideoConfig, prior: DiffusionPrior, adapter: TemporalAdapter | None, run_dir: Path):
        if prior.vae is None:
            raise UsageError("text2video needs a latent prior (with a VAE)")
        if config.mode == "animate" and adapter is None:
            raise UsageError("animate mode needs temporal layers")
        self.config, self.prior, self.adapter, self.run_dir = config, prior, adapter, Path(run_dir)
        self.frames: np.ndarray | None = None
        if adapter is not None:
            adapter.check_fits(prior.unet)
            resolve_window(adapter, config.window or None, config.window_stride or None)
            with quiet_libraries():
                self.adapter = adapter.to(prior.device, prior.dtype).eval().requires_grad_(False)

    def initial_noise(self, shape: tuple[int, ...], window: int | None = None) -> torch.Tensor:
        """Noise B×C×F×h×w, video i drawn from seed + i (on the CPU, so devices agree).

        With ``window``, frames past the first window repeat the first window's noise in shuffled order
        (FreeNoise's noise rescheduling), so every temporal window starts from statistically alike noise.
        """
        batch, channels, frames, height, width = shape
        noise = []
        for i in range(batch):
            generator = torch.Generator().manual_seed(self.config.seed + i)
            clip = torch.randn(channels, frames, height, width, generator=generator)
            if window is not None and frames > window:
                for start in range(window, frames, window):
                    order = torch.randperm(window, generator=generator)[: min(window, frames - start)]
                    clip[:, start : start + len(order)] = clip[:, order]
            noise.append(clip)
        return torch.stack(noise).to(self.prior.device)

    def _prompt_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Text states and token embeddings, each 2B×L×D (B = videos): the prompt's B copies, then the negative
        prompt's."""
        prompts = [self.config.prompt, self.config.negative_prompt]
        videos, dtype = self.config.videos, self.prior.dtype
        text = self.prior.encode_text(prompts).repeat_interleave(videos, dim=0).to(dtype)
        tokens = self.prior.embed_tokens(prompts).repeat_interleave(videos, dim=0).to(dtype)
        return text, tokens

    def _denoise(
        self, model, latents: torch.Tensor, timesteps: torch.Tensor, step_done: Callable[[], None]
    ) -> torch.Tensor:
        """Run ``timesteps`` of the scheduler on latents B×C×F×h×w with CFG, calling ``step_done`` after each;
        ``model`` (latents, timestep, text states, token embeddings) predicts B×C×F×h×w."""
        text, tokens = self._prompt_inputs()

        def guided(sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return model(sample, t, text, tokens)

        return denoise_with_cfg(self.prior, guided, latents, timesteps, self.config.guidance_scale, step_done)

    def _frames_model(
        self, sample: torch.Tensor, t: torch.Tensor, text: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """The plain U-Net over every frame: B×C×F×h×w → B×C×F×h×w (it reads the text states, not the tokens)."""
        return run_per_frame(self.prior.unet, sample, t, text)

    @torch.no_grad()
    def sample(self, show_progress: bool = True, callback: ProgressCallback | None = None) -> torch.Tensor:
        """Videos B×F×3×H×W in [0, 1] (float32, on the CPU); ``callback`` hears of every denoising step."""
        config, prior = self.config, self.prior
        scheduler = prior.scheduler
        scheduler.set_timesteps(config.steps, device=prior.device)
        timesteps = scheduler.timesteps
        size = prior.unet.config.sample_size
        shape = (config.videos, prior.unet.config.in_channels, config.frames, size, size)
        if config.mode == "animate":
            progress = tqdm(total=len(timesteps), desc="sample (animate)", unit="step", disable=not show_progress)
            with InflatedUNet(
                prior.unet, self.adapter, config.window or None, config.window_stride or None
            ) as inflated:
                latents = self.initial_noise(shape, inflated.window) * scheduler.init_noise_sigma
                latents = self._denoise(inflated, latents, timesteps, partial(step_done, progress, callback))
        else:
            renoise_index, translate_index = self.zero_shot_indices(timesteps)
            total = translate_index + len(timesteps) - renoise_index
            progress = tqdm(total=total, desc="sample (zero-shot)", unit="step", disable=not show_progress)
            on_step = partial(step_done, progress, callback)
            latents = self._sample_zero_shot(shape, timesteps, renoise_index, translate_index, on_step)
        progress.close()
        return self.decode(latents)

    def zero_shot_indices(self, timesteps: torch.Tensor) -> tuple[int, int]:
        """Indices into ``timesteps`` of the re-noising level and of the translation level (the later one)."""
        zero_shot, total = self.config.zero_shot, self.prior.num_train_timesteps
        if len(timesteps) < 2:
            raise UsageError("zero-shot mode needs at least 2 steps")
        renoise = min(int((timesteps > zero_shot.renoise_to * total).sum()), len(timesteps) - 2)
        translate = min(max(int((timesteps > zero_shot.translate_at * total).sum()), renoise + 1), len(timesteps) - 1)
        return renoise, translate

    def _sample_zero_shot(
        self,
        shape: tuple[int, ...],
        timesteps: torch.Tensor,
        renoise_index: int,
        translate_index: int,
        step_done: Callable[[], None],
    ) -> torch.Tensor:
        """Text2Video-Zero: the first frame alone down to the translation level, translated per frame, re-noised
        (one noise shared by all frames) to the re-noising level, then all frames with cross-frame attention."""
        prior = self.prior
        single = (*shape[:2], 1, *shape[3:])
        first = self.initial_noise(single) * prior.scheduler.init_noise_sigma
        first = self._denoise(self._frames_model, first, timesteps[:translate_index], step_done)[:, :, 0]
        frames = translate_latents(first, shape[2], self.config.zero_shot.motion)
        t_from, t_to = int(timesteps[translate_index]), int(timesteps[renoise_index])
        ratio = prior.alphas_cumprod[t_to] / prior.alphas_cumprod[t_from]
        noise = torch.randn(single, generator=torch.Generator().manual_seed(self.config.seed + 10**6)).to(prior.device)
        latents = ratio.sqrt() * frames + (1 - ratio).sqrt() * noise
        with cross_frame_attention(prior.unet, shape[2]):
            return self._denoise(self._frames_model, latents, timesteps[renoise_index:], step_done)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Video latents B×C×F×h×w → frames B×F×3×H×W in [0, 1], decoded ``decode_chunk`` frames at a time."""
        batch, channels, frames, height, width = latents.shape
        flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)
        images = [self.prior.decode(chunk).cpu() for chunk in flat.split(self.config.decode_chunk)]
        return torch.cat(images).reshape(batch, frames, *images[0].shape[1:])

    def run(self, callback: ProgressCallback | None = None) -> dict:
        """Sample, then write the run folder (nothing is written before sampling ends); returns the metrics.
        ``callback`` hears of every denoising step."""
        start = time.time()
        videos = self.sample(callback=callback)
        sample_seconds = time.time() - start
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text(self.run_dir / "config.yaml", dump_yaml(self.config))
        frames = (videos * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()  # B×F×H×W×3
        self.frames = frames
        for name, clip in zip(video_names(self.config.videos), frames):
            write_video(clip, self.run_dir / f"{name}.mp4", self.config.fps)
            write_gif(clip, self.run_dir / f"{name}.gif", self.config.fps)
            if self.config.save_frames:
                for index, frame in enumerate(clip):
                    write_png(frame, self.run_dir / "frames" / name / f"{index:03d}.png")
        metrics = {
            "prompt": self.config.prompt,
            "mode": self.config.mode,
            "seeds": [self.config.seed + i for i in range(self.config.videos)],
            "frames": self.config.frames,
            "size": list(frames.shape[2:4]),
            "sample_seconds": round(sample_seconds, 2),
            "total_seconds": round(time.time() - start, 2),
        }
        write_json(self.run_dir / "metrics.json", metrics)
        return metrics
