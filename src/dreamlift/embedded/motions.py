"""Procedural motion clips of the embedded prior's objects, for training the embedded motion adapter.

Each clip shows one object of the embedded prior's vocabulary (same renderer, cameras, light and background
as its images) moving across the frame or changing size, captioned "a {colour} {shape} {motion}", e.g.
"a blue sphere moving left" or "a red cube growing". Directions are on screen: left/right along the camera's
horizontal axis, up/down along its vertical axis.
"""

from __future__ import annotations

import torch

from dreamlift.embedded.shapes import COLOURS, SHAPES, caption, draw_scenes, render_scenes
from dreamlift.scene.cameras import CameraConfig
from dreamlift.training.clips import Clips

MOTIONS = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking")
"""Motions the embedded motion adapter knows, as they appear at the end of a caption."""


def motion_caption(colour: str, shape: str, motion: str) -> str:
    """E.g. ``"a blue sphere moving left"`` or ``"an orange cone growing"``."""
    return f"{caption(colour, shape)} {motion}"


def _placement(motion: torch.Tensor, num_frames: int, generator: torch.Generator, half_width: torch.Tensor):
    """Screen-plane offsets N×F×2 (world units, right/up) and scales N×F of the object along each clip.

    Objects keep about the size the embedded prior was trained on (scale 0.85–1). Translations travel 40–60% of
    the half-width of the view at the object (so 20–30% of the frame); sizes change by a factor 1.4–1.6
    between the first and last frame.
    """
    n = motion.shape[0]
    progress = torch.linspace(0, 1, num_frames)[None]  # 1×F
    travel = (0.4 + 0.2 * torch.rand(n, 1, generator=generator)) * half_width[:, None]
    jitter = 0.1 * half_width[:, None] * (2 * torch.rand(n, 1, generator=generator) - 1)
    along = travel * (progress - 0.5)  # N×F, from -travel/2 to +travel/2
    direction = {0: (-1, 0), 1: (1, 0), 2: (0, 1), 3: (0, -1)}
    offsets = torch.zeros(n, num_frames, 2)
    for index, (dx, dy) in direction.items():
        rows = motion == index
        offsets[rows, :, 0] = dx * along[rows] + (dy != 0) * jitter[rows]
        offsets[rows, :, 1] = dy * along[rows] + (dx != 0) * jitter[rows]
    base = 0.85 + 0.15 * torch.rand(n, 1, generator=generator)
    ratio = 1.4 + 0.2 * torch.rand(n, 1, generator=generator)
    small, large = 0.72 * base, 0.72 * base * ratio
    scale = base.expand(n, num_frames).clone()
    growing, shrinking = motion == 4, motion == 5
    scale[growing] = (small + (large - small) * progress)[growing]
    scale[shrinking] = (large + (small - large) * progress)[shrinking]
    return offsets, scale


def render_motion_clips(num: int, num_frames: int, seed: int, resolution: int = 64, device: str = "cpu") -> Clips:
    """``num`` random clips (colour, shape and motion uniform), deterministic in ``seed``, rendered on ``device``
    (the frames come back on the CPU)."""
    generator = torch.Generator().manual_seed(seed)
    colour = torch.randint(len(COLOURS), (num,), generator=generator)
    shape = torch.randint(len(SHAPES), (num,), generator=generator)
    motion = torch.randint(len(MOTIONS), (num,), generator=generator)
    scenes = draw_scenes(colour, shape, generator, CameraConfig(), overhead_fraction=0.0)
    half_width = scenes.cameras.distance * torch.tan(0.5 * scenes.cameras.fov_y)
    offsets, scale = _placement(motion, num_frames, generator, half_width)
    right, up = scenes.cameras.c2w[:, :3, 0], scenes.cameras.c2w[:, :3, 1]  # N×3 camera axes in world space
    world_offset = offsets[..., :1] * right[:, None] + offsets[..., 1:] * up[:, None]  # N×F×3
    images = render_scenes(
        scenes.repeat(num_frames).to(device),
        resolution,
        offset=world_offset.reshape(-1, 3).to(device),
        scale=scale.reshape(-1).to(device),
    )
    frames = (images * 255).round().to(torch.uint8).cpu().reshape(num, num_frames, 3, resolution, resolution)
    names = list(COLOURS)
    captions = [
        motion_caption(names[c], SHAPES[s], MOTIONS[m])
        for c, s, m in zip(colour.tolist(), shape.tolist(), motion.tolist())
    ]
    return Clips(frames, captions)
