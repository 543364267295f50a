"""The configuration of a text2video run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dreamlift.priors.diffusion import PriorConfig


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
    pulls objects back to the centre until late, so its default translates late: with the current prior, +x
    moved 8 of 12 clips right at 0.08 → 0.04, 4 of 12 at 0.2 → 0.1 (bench/motion_quality.py's pairs, 2 seeds)."""

    def __post_init__(self):
        if not 0 < self.translate_at < self.renoise_to <= 1:
            raise ValueError("zero_shot needs 0 < translate_at < renoise_to <= 1")


@dataclass
class Text2VideoConfig:
    """Everything a text2video run depends on; config.yaml of a run folder holds the resolved values."""

    prompt: str = ""
    """What to show, e.g. "a blue sphere moving right"."""
    seed: int = 0
    """Seed of video 0; video i uses seed + i."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    prior: PriorConfig = field(default_factory=PriorConfig)
    motion_adapter: str = "embedded"
    """Temporal layers: ``embedded`` (shipped with dreamlift), a folder or hub id (ours or an AnimateDiff
    MotionAdapter), or an AnimateDiff checkpoint file. Unused in zero-shot mode."""
    mode: Literal["animate", "zero-shot"] = "animate"
    frames: int = 8
    """Frames per video."""
    fps: int = 8
    """Frames per second of the written videos."""
    steps: int = 25
    """Denoising steps of the prior's scheduler."""
    guidance: float = 4.0
    """Classifier-free guidance scale s in ε_u + s·(ε_c − ε_u). 4 suited the embedded motion model of the first
    embedded prior best (its bench passed 26/72 clips at 12, 35 at 7.5, 37 at 5.5, 41 at 4, 37 at 2.5); the
    current pair is flat around it (52, 53, 53 of 72 at 2.5, 4, 6). AnimateDiff with Stable Diffusion weights is
    usually sampled at 7.5."""
    videos: int = 1
    """Videos of the prompt, sampled in one batch."""
    negative_prompt: str = ""
    window: int = 0
    """Frames per temporal window for long clips; 0 uses the length the temporal layers were trained on."""
    window_stride: int = 0
    """Frames between temporal windows; 0 uses half a window."""
    decode_chunk: int = 16
    """Frames decoded by the VAE at a time."""
    save_frames: bool = False
    """Also write every frame as a PNG."""
    zero_shot: ZeroShotConfig = field(default_factory=ZeroShotConfig)

    def __post_init__(self):
        if self.frames < 1:
            raise ValueError("frames must be >= 1")
        if self.fps <= 0:
            raise ValueError("fps must be > 0")
        for name in ("steps", "videos", "decode_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.window < 0 or self.window_stride < 0:
            raise ValueError("window and window_stride must be >= 0")
