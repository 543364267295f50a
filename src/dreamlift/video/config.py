"""The configuration of a text2video run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from dreamlift.priors.diffusion import PriorConfig
from dreamlift.runtime import check_seed

MAX_FRAMES = 256
"""Most frames per video, a length whose arrays a workstation holds even for a 512-pixel prior (Stable Diffusion
1.5): the decoded video, float32 F×3×H×W and then uint8 F×H×W×3 on the CPU, is 0.8 GB and 0.2 GB at 256 frames,
and its latents (2F×4×64×64 float32 with classifier-free guidance) 34 MB. The U-Net sees all frames of a run at
once, so such a prior may run out of GPU memory sooner. (A million frames, unbounded, died allocating.)
AnimateDiff clips are 16 to 32 frames; longer ones use temporal windows."""

MAX_VIDEOS = 64
"""Most videos of one run (one batch of noise)."""

MAX_BATCH_FRAMES = 1024
"""Most frames of one run, videos × frames: all of them are denoised and decoded together, so this, not either
factor alone, bounds the memory (3.2 GB of float32 frames at 512 pixels, and copies of that size while they are
converted to uint8)."""

MAX_STEPS = 1000
"""Most denoising steps: the number of training timesteps of the shipped and Stable Diffusion priors'
schedulers, which refuse more."""

MAX_FPS = 100
"""Fastest frame rate: GIF stores frame delays in whole hundredths of a second, so 100 fps is the most it can
encode (above 200 fps the delay would round to 0, which viewers replace with a default)."""


@dataclass
class ZeroShotConfig:
    """Text2Video-Zero settings (``mode: zero-shot``)."""

    motion: tuple[float, float] = (0.03, 0.0)
    """Translation per frame as (right, up), in fractions of the frame's width and height."""
    renoise_to: float = 0.08
    """Noise level (fraction of the training timesteps) the translated frames are re-noised to, and denoised from."""
    translate_at: float = 0.04
    """Noise level down to which the first frame is denoised alone before it is translated; below renoise_to.
    Text2Video-Zero uses 0.88 → 0.94 with Stable Diffusion, whose layout is settled early; the embedded prior
    pulls objects back to the centre until late, so its default translates late (docs/benchmarks.md)."""

    def __post_init__(self):
        if not 0 < self.translate_at < self.renoise_to <= 1:
            raise ValueError("zero_shot needs 0 < translate_at < renoise_to <= 1")


@dataclass
class Text2VideoConfig:
    """Everything a text2video run depends on; config.yaml of a run folder holds the resolved values."""

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"guidance": "guidance_scale"}
    """Keys of older versions' config.yaml files, read under their new names."""

    prompt: str = ""
    """What to show, e.g. "a blue sphere moving right"."""
    seed: int = 0
    """Seed of video 0; video i uses seed + i."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    prior: PriorConfig = field(default_factory=PriorConfig)
    motion_adapter: str = "embedded"
    """Temporal layers: ``embedded`` (shipped with dreamlift), a folder or hub id (ours or an AnimateDiff
    TemporalAdapter), or an AnimateDiff checkpoint file. Unused in zero-shot mode."""
    mode: Literal["animate", "zero-shot"] = "animate"
    frames: int = 8
    """Frames per video, 1 to :data:`MAX_FRAMES` (256)."""
    fps: int = 8
    """Frames per second of the written videos, 1 to :data:`MAX_FPS` (100)."""
    steps: int = 25
    """Denoising steps of the prior's scheduler, 1 to :data:`MAX_STEPS` (1000); zero-shot mode needs 2."""
    guidance_scale: float = 4.0
    """Classifier-free guidance scale s in ε_u + s·(ε_c − ε_u), as diffusers names it. 4 suits the embedded motion
    model (docs/benchmarks.md); AnimateDiff with Stable Diffusion weights is usually sampled at 7.5."""
    videos: int = 1
    """Videos of the prompt, sampled in one batch: 1 to :data:`MAX_VIDEOS` (64), and videos × frames at most
    :data:`MAX_BATCH_FRAMES` (1024)."""
    negative_prompt: str = ""
    window: int = 0
    """Frames per temporal window for long clips; 0 uses the length the temporal layers were trained on. At most
    the layers' frame-position count (checked when they are loaded)."""
    window_stride: int = 0
    """Frames between temporal windows; 0 uses half a window."""
    decode_chunk: int = 16
    """Frames decoded by the VAE at a time, 1 to :data:`MAX_BATCH_FRAMES` (more is the same as all of a run's)."""
    save_frames: bool = False
    """Also write every frame as a PNG."""
    zero_shot: ZeroShotConfig = field(default_factory=ZeroShotConfig)

    def __post_init__(self):
        check_seed(self.seed)
        limits = {
            "frames": MAX_FRAMES, "fps": MAX_FPS, "steps": MAX_STEPS, "videos": MAX_VIDEOS,
            "decode_chunk": MAX_BATCH_FRAMES,
        }  # fmt: skip
        for name, most in limits.items():
            if not 1 <= getattr(self, name) <= most:
                raise ValueError(f"{name} must be between 1 and {most} (got {getattr(self, name)})")
        if self.videos * self.frames > MAX_BATCH_FRAMES:
            raise ValueError(
                f"videos × frames must be at most {MAX_BATCH_FRAMES} (got {self.videos} × {self.frames}); "
                "sample fewer videos per run"
            )
        if self.mode == "zero-shot" and self.steps < 2:
            raise ValueError("zero-shot mode needs at least 2 steps")
        if self.window < 0 or self.window_stride < 0:
            raise ValueError("window and window_stride must be >= 0")
