"""A 2D U-Net inflated with temporal layers: the image model run over the frames of video latents.

The U-Net itself is unchanged and stays frozen. Forward hooks on its spatial layers (each resnet of a block
without attention, each attention of a block with it, each mid-block attention) pass their output through the
matching temporal transformer of a :class:`TemporalAdapter` — the places, and the order, where diffusers'
UNetMotionModel puts its motion modules. When the adapter has a prompt embedding, a hook on each temporal
transformer's ``proj_in`` adds that layer's projection of the pooled prompt to its frame tokens, weighted per
frame by the cosine frame basis (over the frames of the window the layer sees). With
zero-initialised temporal layers the inflated model is exactly the image model applied frame by frame.

Clips longer than the layers were trained on are handled FreeNoise-style: each temporal transformer runs on
overlapping windows of ``window`` frames, ``stride`` apart, and the windows' updates are blended with
weights that fall off toward each window's ends, so there are no seams where windows meet.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

from dreamlift.errors import UsageError
from dreamlift.video.temporal import TemporalAdapter, frame_basis


def spatial_temporal_layers(unet: UNet2DConditionModel, adapter: TemporalAdapter):
    """(spatial layer, temporal transformer, prompt projection or None) triples: each temporal transformer runs
    on its spatial layer's output, with its projection of the pooled prompt when the adapter has one."""
    pairs = [(unet.down_blocks, adapter.down_blocks), (unet.up_blocks, adapter.up_blocks)]
    if adapter.mid_block is not None:
        pairs.append(([unet.mid_block], [adapter.mid_block]))
    for spatial_blocks, temporal_blocks in pairs:
        for spatial, temporal in zip(spatial_blocks, temporal_blocks, strict=True):
            layers = spatial.attentions if getattr(spatial, "attentions", None) else spatial.resnets
            projections = temporal.prompt_projections or [None] * len(temporal.motion_modules)
            yield from zip(layers, temporal.motion_modules, projections, strict=True)


def run_per_frame(
    unet: UNet2DConditionModel, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor
) -> torch.Tensor:
    """``unet`` on every frame of video latents B×C×F×h×w → B×C×F×h×w; the timestep (scalar or B) and the text
    states B×L×D of a video are repeated for each of its frames."""
    batch, channels, frames, height, width = sample.shape
    flat = sample.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)
    timestep = torch.as_tensor(timestep, device=sample.device).expand(batch).repeat_interleave(frames)
    out = unet(flat, timestep, encoder_hidden_states=encoder_hidden_states.repeat_interleave(frames, dim=0)).sample
    return out.reshape(batch, frames, -1, height, width).permute(0, 2, 1, 3, 4)


def frame_windows(num_frames: int, window: int, stride: int) -> list[range]:
    """Overlapping windows of ``window`` frames every ``stride`` frames, the last one ending at the last frame."""
    if num_frames <= window:
        return [range(num_frames)]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] != num_frames - window:
        starts.append(num_frames - window)
    return [range(s, s + window) for s in starts]


def window_weights(window: int) -> torch.Tensor:
    """Blending weights (window,) of one window's frames: 1, 2, … at the ends rising to the middle (pyramid)."""
    position = torch.arange(window, dtype=torch.float32)
    return torch.minimum(position + 1, window - position)


def resolve_window(adapter: TemporalAdapter, window: int | None, stride: int | None) -> tuple[int, int]:
    """Frames per temporal window and between windows: by default the adapter's trained length and half of it."""
    window = window or adapter.config.trained_frames
    stride = stride or max(1, window // 2)
    if not 1 <= window <= adapter.config.max_frames:
        raise UsageError(f"temporal window must lie in [1, {adapter.config.max_frames}] frames, got {window}")
    if not 1 <= stride <= window:
        raise UsageError(f"temporal window stride must lie in [1, window = {window}], got {stride}")
    return window, stride


class InflatedUNet:
    """Runs ``unet`` over video latents B×C×F×h×w with ``adapter``'s temporal layers after its spatial layers.

    window, stride: frames per temporal window and the step between windows (default: the adapter's
    trained_frames and half of it). Use as a context manager, or call :meth:`remove`, to take the hooks off.
    """

    def __init__(
        self, unet: UNet2DConditionModel, adapter: TemporalAdapter, window: int | None = None, stride: int | None = None
    ):
        adapter.check_fits(unet)
        self.unet, self.adapter = unet, adapter
        self.window, self.stride = resolve_window(adapter, window, stride)
        self._num_frames: int | None = None
        self._text: torch.Tensor | None = None
        self._prompt: torch.Tensor | None = None
        self._handles = []
        for layer, temporal, projection in spatial_temporal_layers(unet, adapter):
            self._handles.append(layer.register_forward_hook(self._hook(temporal)))
            if projection is not None:
                self._handles.append(temporal.proj_in.register_forward_hook(self._prompt_hook(projection)))

    def __enter__(self) -> InflatedUNet:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Take the hooks off the U-Net; it is the plain image model again."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, temporal: AnimateDiffTransformer3D):
        def hook(module, inputs, output):
            if self._num_frames is None:
                return output
            if isinstance(output, torch.Tensor):
                return self._temporal(temporal, output)
            return (self._temporal(temporal, output[0]), *output[1:])

        return hook

    def _prompt_hook(self, projection: torch.nn.Linear):
        def hook(module, inputs, output):
            """Frame tokens (B·H·W)×F×C plus this layer's prompt term: its projection of the pooled prompt
            (B×K·C, one C-vector per basis function) weighted per frame by the K×F frame basis."""
            if self._prompt is None:
                return output
            batch, frames, channels = self._prompt.shape[0], output.shape[1], output.shape[2]
            weights = projection(self._prompt).view(batch, -1, channels)  # B×K×C
            basis = frame_basis(frames, weights.shape[1], weights.device).to(weights.dtype)  # K×F
            per_frame = torch.einsum("kf,bkc->bfc", basis, weights)
            return output + per_frame.repeat_interleave(output.shape[0] // batch, dim=0)

        return hook

    def _temporal(self, temporal: AnimateDiffTransformer3D, hidden: torch.Tensor) -> torch.Tensor:
        """Apply one temporal transformer to hidden states (B·F)×C×H×W, windowed over frames when F > window."""
        frames = self._num_frames
        batch_frames, channels, height, width = hidden.shape
        batch = batch_frames // frames
        windows = frame_windows(frames, self.window, self.stride)
        if len(windows) == 1:
            return temporal(hidden, encoder_hidden_states=self._text_for(height * width), num_frames=frames)
        video = hidden.reshape(batch, frames, channels, height, width)
        update = torch.zeros_like(video)
        total = torch.zeros(frames, dtype=hidden.dtype, device=hidden.device)
        weights = window_weights(self.window).to(hidden)
        text = self._text_for(height * width)
        for frame_range in windows:
            part = video[:, frame_range.start : frame_range.stop]
            flat = part.reshape(batch * self.window, channels, height, width)
            delta = temporal(flat, encoder_hidden_states=text, num_frames=self.window) - flat
            update[:, frame_range.start : frame_range.stop] += weights[None, :, None, None, None] * delta.reshape(
                part.shape
            )
            total[frame_range.start : frame_range.stop] += weights
        return hidden + (update / total[None, :, None, None, None]).reshape(hidden.shape)

    def _text_for(self, positions: int) -> torch.Tensor | None:
        """Text states (B·H·W)×L×D for the temporal cross-attention, or None without it."""
        if self._text is None:
            return None
        return self._text.repeat_interleave(positions, dim=0)

    def __call__(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        token_embeddings: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Noise (or v) prediction B×C×F×h×w for video latents ``sample`` B×C×F×h×w.

        timestep: a scalar or B timesteps (one per video). encoder_hidden_states: B×L×D text states, shared by
        the frames of a video (repeated per frame for the spatial layers, per position for the temporal ones).
        token_embeddings: the prompts' token embeddings B×L×D (:meth:`DiffusionPrior.embed_tokens`), needed when
        the adapter's prompt pooling reads them.
        """
        self._num_frames = sample.shape[2]
        self._text = encoder_hidden_states if self.adapter.config.cross_attention_dim is not None else None
        pooling = self.adapter.prompt_pooling
        self._prompt = pooling(encoder_hidden_states, token_embeddings) if pooling is not None else None
        try:
            return run_per_frame(self.unet, sample, timestep, encoder_hidden_states)
        finally:
            self._num_frames, self._text, self._prompt = None, None, None
