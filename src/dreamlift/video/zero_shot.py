"""Text2Video-Zero's two ingredients for animating a plain image prior without training.

- :func:`translate_latents`: motion dynamics — the first frame's latent shifted along a motion vector, by k
  times the per-frame motion for frame k.
- :func:`cross_frame_attention`: every frame's spatial self-attention takes its keys and values from the first
  frame of its clip, so all frames keep the first frame's appearance.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel


def translate_latents(latent: torch.Tensor, num_frames: int, motion: tuple[float, float]) -> torch.Tensor:
    """Frames of a translated latent: B×C×h×w → B×C×F×h×w, frame k shifted by k·motion.

    motion: (right, up) per frame, in fractions of the frame's width and height. Bilinear resampling; the
    border is extended into the area uncovered by the shift.
    """
    batch, channels, height, width = latent.shape
    k = torch.arange(num_frames, dtype=latent.dtype, device=latent.device)
    ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, height, dtype=latent.dtype, device=latent.device)
    xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, width, dtype=latent.dtype, device=latent.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    # Content moves right by dx (fraction of width) when each output pixel reads from 2·dx to its left.
    sample_x = grid_x[None] - 2 * motion[0] * k[:, None, None]
    sample_y = grid_y[None] + 2 * motion[1] * k[:, None, None]  # image rows grow downward; "up" reads from below
    grid = torch.stack([sample_x, sample_y], dim=-1)  # F×h×w×2
    frames = latent[:, None].expand(batch, num_frames, channels, height, width).reshape(-1, channels, height, width)
    grid = grid[None].expand(batch, -1, -1, -1, -1).reshape(-1, height, width, 2)
    shifted = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return shifted.reshape(batch, num_frames, channels, height, width).permute(0, 2, 1, 3, 4)


class CrossFrameAttnProcessor:
    """Self-attention whose keys and values come from the first frame of each clip (Text2Video-Zero).

    Hidden states arrive as (B·F)×N×C with the F frames of each clip adjacent; cross-attention to text is
    left as it is.
    """

    def __init__(self, num_frames: int):
        self.num_frames = num_frames

    def _first_frame(self, x: torch.Tensor) -> torch.Tensor:
        clips = x.shape[0] // self.num_frames
        first = x.reshape(clips, self.num_frames, *x.shape[1:])[:, :1]
        return first.expand(clips, self.num_frames, *x.shape[1:]).reshape(x.shape)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        residual = hidden_states
        is_self_attention = encoder_hidden_states is None
        context = hidden_states if is_self_attention else encoder_hidden_states
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        if is_self_attention:
            key, value = self._first_frame(key), self._first_frame(value)
        batch = query.shape[0]
        head_dim = query.shape[-1] // attn.heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(batch, -1, attn.heads, head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(query), heads(key), heads(value), scale=attn.scale)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


@contextlib.contextmanager
def cross_frame_attention(unet: UNet2DConditionModel, num_frames: int) -> Iterator[None]:
    """Inside the block, every spatial self-attention of ``unet`` attends to the first frame of its clip."""
    original = unet.attn_processors
    cross_frame = CrossFrameAttnProcessor(num_frames)
    unet.set_attn_processor(
        {name: cross_frame if name.endswith("attn1.processor") else p for name, p in original.items()}
    )
    try:
        yield
    finally:
        unet.set_attn_processor(original)
