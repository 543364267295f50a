"""Temporal layers for a 2D U-Net, laid out like diffusers' MotionAdapter (AnimateDiff).

One temporal transformer (diffusers' ``AnimateDiffTransformer3D``) follows every spatial block of the U-Net:
self-attention across the frames at each spatial position, sinusoidal frame-position embeddings, and, when
``cross_attention_dim`` is set, a cross-attention to the prompt's text states, so that motion words can steer
the motion directly. With ``prompt_embedding_dim`` set as well, a :class:`PromptPooling` reads the prompt into
one vector, and each temporal transformer adds its own projection of that vector to its frame tokens (after
``proj_in``): a direct route from the motion words to every temporal layer. The projection gives one vector per
cosine basis function over the frames (``prompt_frame_basis``: a constant, then a ramp from the first frame to
the last, …), so a prompt can say which way along time things change, not only that they change.

Every output projection starts at zero, so an inflated U-Net starts equal to the image model (diffusers leaves
new motion modules randomly initialised; we do not).

The parameter names are MotionAdapter's (``down_blocks.i.motion_modules.j…``, ``mid_block…``, ``up_blocks…``),
so an AnimateDiff motion adapter converts by a plain state-dict copy (:func:`from_motion_adapter`), and an
adapter without text cross-attention converts back (:func:`to_motion_adapter`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import MotionAdapter, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn

from dreamlift.errors import UsageError, first_line
from dreamlift.priors.diffusion import looks_like_hub_id, quiet_libraries


class PromptPooling(nn.Module):
    """Attention pooling of a prompt's text states into one vector: learned queries over the prompt's tokens.

    A per-position cross-attention must find the one word that says which way things move among the other
    tokens, separately at every pixel and noise level; a few learned queries can lock onto it once for the clip.

    With ``read_tokens``, keys and values also take in each token's input embedding (layer-normalised; through
    their own projections, zero-initialised so that layers trained without them start unchanged). A text encoder
    that never saw a word in training can map it to nearly the same output state as other unseen words (the
    embedded prior's encoder gives "right", "up" and "down" cosine similarities of 0.99 there); their input
    embeddings stay distinct.
    """

    def __init__(self, text_dim: int, width: int, num_queries: int, read_tokens: bool = False):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, width) / width**0.5)
        self.to_key = nn.Linear(text_dim, width)
        self.to_value = nn.Linear(text_dim, width)
        self.token_to_key = nn.Linear(text_dim, width) if read_tokens else None
        self.token_to_value = nn.Linear(text_dim, width) if read_tokens else None
        for layer in (self.token_to_key, self.token_to_value):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.to_out = nn.Sequential(nn.Linear(num_queries * width, width), nn.SiLU(), nn.Linear(width, width))

    @property
    def reads_tokens(self) -> bool:
        return self.token_to_key is not None

    def forward(self, text: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Text states B×L×D (and, when it reads them, token embeddings B×L×D) → prompt vectors B×width."""
        keys, values = self.to_key(text), self.to_value(text)  # B×L×W
        if self.reads_tokens:
            if tokens is None:
                raise ValueError("this prompt pooling reads token embeddings; pass them (DiffusionPrior.embed_tokens)")
            tokens = F.layer_norm(tokens, tokens.shape[-1:])
            keys, values = keys + self.token_to_key(tokens), values + self.token_to_value(tokens)
        scores = torch.einsum("qw,blw->bql", self.queries, keys) / keys.shape[-1] ** 0.5
        pooled = torch.einsum("bql,blw->bqw", scores.softmax(dim=-1), values)
        return self.to_out(pooled.flatten(1))


def frame_basis(num_frames: int, size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Cosine basis over frames, size×F (float32, on ``device``): row k is cos(π·k·(f + ½)/F) (row 0 is all ones,
    row 1 falls from ≈1 at the first frame to ≈−1 at the last)."""
    frames = torch.arange(num_frames, dtype=torch.float32, device=device) + 0.5
    orders = torch.arange(size, dtype=torch.float32, device=device)
    return torch.cos(torch.pi * orders[:, None] * frames[None] / num_frames)


class TemporalBlock(nn.Module):
    """The temporal layers that follow the spatial layers of one U-Net block (MotionAdapter's ``MotionModules``),
    and, with a prompt embedding, one projection of the prompt vector per layer (to the layer's width, once per
    frame basis function)."""

    def __init__(
        self,
        channels: int,
        num_layers: int,
        heads: int,
        groups: int,
        max_frames: int,
        text_dim: int | None,
        prompt_dim: int | None,
        prompt_basis: int,
    ):
        super().__init__()
        self.motion_modules = nn.ModuleList(
            AnimateDiffTransformer3D(
                num_attention_heads=heads,
                attention_head_dim=channels // heads,
                in_channels=channels,
                norm_num_groups=groups,
                cross_attention_dim=text_dim,
                activation_fn="geglu",
                attention_bias=False,
                double_self_attention=text_dim is None,
                positional_embeddings="sinusoidal",
                num_positional_embeddings=max_frames,
            )
            for _ in range(num_layers)
        )
        self.prompt_projections = nn.ModuleList(
            [] if prompt_dim is None else [nn.Linear(prompt_dim, prompt_basis * channels) for _ in range(num_layers)]
        )


class TemporalAdapter(ModelMixin, ConfigMixin):
    """Temporal transformers for every spatial block of a UNet2DConditionModel.

    Shapes: each temporal transformer maps hidden states (B·F)×C×H×W to the same shape, attending over the F
    frames at each of the H×W positions (and, with text cross-attention, to (B·H·W)×L×D text states). The
    prompt pooling maps B×L×D text states to B×prompt_embedding_dim.
    """

    @register_to_config
    def __init__(
        self,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        mid_block_layers: int = 1,
        num_attention_heads: int = 8,
        norm_num_groups: int = 32,
        max_frames: int = 32,
        trained_frames: int = 16,
        cross_attention_dim: int | None = None,
        prompt_embedding_dim: int | None = None,
        prompt_queries: int = 4,
        prompt_frame_basis: int = 2,
        prompt_reads_tokens: bool = False,
    ):
        """
        block_out_channels: the U-Net's block widths. layers_per_block: the U-Net's (the up blocks get one more).
        mid_block_layers: temporal layers in the mid block (0: none). max_frames: length of the frame-position
        table. trained_frames: clip length the layers were trained on; longer clips are sampled in windows of it.
        cross_attention_dim: width of the text states the temporal layers attend to (None: no text attention).
        prompt_embedding_dim: width of the pooled prompt vector added to every temporal layer's frame tokens
        (None: none; needs cross_attention_dim). prompt_queries: learned queries of the prompt pooling.
        prompt_frame_basis: cosine basis functions over the frames that the prompt vector sets the weights of
        (1: the same vector for every frame; 2: also a ramp along the clip; see :func:`frame_basis`).
        prompt_reads_tokens: the prompt pooling also reads the text encoder's token embeddings (see
        :class:`PromptPooling`; needs prompt_embedding_dim).
        """
        super().__init__()
        if prompt_embedding_dim is not None and cross_attention_dim is None:
            raise ValueError("a prompt embedding needs the text width (cross_attention_dim)")
        if prompt_frame_basis < 1:
            raise ValueError("prompt_frame_basis must be ≥ 1")
        if prompt_reads_tokens and prompt_embedding_dim is None:
            raise ValueError("reading token embeddings needs a prompt embedding (prompt_embedding_dim)")
        self.prompt_pooling = (
            PromptPooling(cross_attention_dim, prompt_embedding_dim, prompt_queries, prompt_reads_tokens)
            if prompt_embedding_dim is not None
            else None
        )

        def block(channels: int, num_layers: int) -> TemporalBlock:
            heads, text_dim = num_attention_heads, cross_attention_dim
            prompt = (prompt_embedding_dim, prompt_frame_basis)
            return TemporalBlock(channels, num_layers, heads, norm_num_groups, max_frames, text_dim, *prompt)

        self.down_blocks = nn.ModuleList(block(c, layers_per_block) for c in block_out_channels)
        self.mid_block = block(block_out_channels[-1], mid_block_layers) if mid_block_layers > 0 else None
        self.up_blocks = nn.ModuleList(block(c, layers_per_block + 1) for c in reversed(block_out_channels))
        for module in self.modules():
            if isinstance(module, AnimateDiffTransformer3D):
                nn.init.zeros_(module.proj_out.weight)
                nn.init.zeros_(module.proj_out.bias)

    @classmethod
    def for_unet(
        cls, unet: UNet2DConditionModel, text_attention: bool = True, prompt_embedding_dim: int | None = None, **kwargs
    ) -> TemporalAdapter:
        """Zero-initialised temporal layers that fit ``unet`` (text attention at the U-Net's text width, and a
        pooled prompt embedding of ``prompt_embedding_dim`` when given)."""
        config = unet.config
        return cls(
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            mid_block_layers=1,
            norm_num_groups=config.norm_num_groups,
            cross_attention_dim=config.cross_attention_dim if text_attention else None,
            prompt_embedding_dim=prompt_embedding_dim,
            **kwargs,
        )

    def with_prompt_tokens(self) -> TemporalAdapter:
        """These layers with a prompt pooling that also reads token embeddings: a copy whose new projections are
        zero, so it computes what these layers compute until it is trained (``text2video train
        init_from=…``)."""
        if self.config.prompt_embedding_dim is None:
            raise ValueError("motion adapter has no prompt embedding to read token embeddings into")
        if self.config.prompt_reads_tokens:
            return self
        settings = {name: value for name, value in self.config.items() if not name.startswith("_")}
        extended = TemporalAdapter(**{**settings, "prompt_reads_tokens": True})
        missing, unexpected = extended.load_state_dict(self.state_dict(), strict=False)
        if unexpected or not all(".token_to_" in name for name in missing):
            raise ValueError(
                f"motion adapter: unexpected parameters {unexpected or missing} when adding token embeddings"
            )
        return extended.to(self.device, self.dtype)

    def prompt_route_parameters(self) -> list[nn.Parameter]:
        """The parameters of the route from the prompt vector into the layers: the prompt pooling and every
        layer's prompt projection (empty without a prompt embedding)."""
        pooling = [] if self.prompt_pooling is None else list(self.prompt_pooling.parameters())
        blocks = (module for module in self.modules() if isinstance(module, TemporalBlock))
        return pooling + [p for block in blocks for p in block.prompt_projections.parameters()]

    def check_fits(self, unet: UNet2DConditionModel) -> None:
        """Raise ValueError (one line) unless these layers fit ``unet``'s blocks and text width."""
        config, own = unet.config, self.config
        if not isinstance(config.layers_per_block, int):
            raise UsageError("motion adapter: U-Nets with per-block layer counts are not supported")
        problems = []
        if tuple(own.block_out_channels) != tuple(config.block_out_channels):
            problems.append(
                f"block widths {tuple(own.block_out_channels)} vs the U-Net's {tuple(config.block_out_channels)}"
            )
        if own.layers_per_block != config.layers_per_block:
            problems.append(f"{own.layers_per_block} layers per block vs the U-Net's {config.layers_per_block}")
        if own.cross_attention_dim not in (None, config.cross_attention_dim):
            problems.append(f"text width {own.cross_attention_dim} vs the U-Net's {config.cross_attention_dim}")
        mid_attentions = len(getattr(unet.mid_block, "attentions", []))
        if own.mid_block_layers not in (0, mid_attentions):
            problems.append(f"{own.mid_block_layers} mid-block layers vs the U-Net's {mid_attentions} mid attentions")
        if problems:
            raise UsageError("motion adapter does not fit the U-Net: " + "; ".join(problems))

    @classmethod
    def from_motion_adapter(cls, adapter: MotionAdapter, trained_frames: int = 16) -> TemporalAdapter:
        """The same layers as an AnimateDiff MotionAdapter (weights copied; no text attention)."""
        config = adapter.config
        uniform = {
            "motion_layers_per_block": config.motion_layers_per_block,
            "motion_num_attention_heads": config.motion_num_attention_heads,
            "motion_transformer_layers_per_block": config.motion_transformer_layers_per_block,
        }
        for name, value in uniform.items():
            values = set(value) if isinstance(value, (list, tuple)) else {value}
            if len(values) != 1:
                raise ValueError(f"motion adapter: per-block {name} is not supported")
        if set(_flatten(config.motion_transformer_layers_per_block)) != {1} or config.conv_in_channels:
            raise ValueError(
                "motion adapter: only one transformer layer per motion module and no conv_in are supported"
            )
        ours = cls(
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=_first(config.motion_layers_per_block),
            mid_block_layers=config.motion_mid_block_layers_per_block if config.use_motion_mid_block else 0,
            num_attention_heads=_first(config.motion_num_attention_heads),
            norm_num_groups=config.motion_norm_num_groups,
            max_frames=config.motion_max_seq_length,
            trained_frames=trained_frames,
        )
        ours.load_state_dict(adapter.state_dict())
        return ours

    def to_motion_adapter(self) -> MotionAdapter:
        """These layers as an AnimateDiff MotionAdapter (only possible without text attention)."""
        config = self.config
        if config.cross_attention_dim is not None:
            raise ValueError("temporal layers with text attention have no MotionAdapter equivalent")
        adapter = MotionAdapter(
            block_out_channels=tuple(config.block_out_channels),
            motion_layers_per_block=config.layers_per_block,
            motion_mid_block_layers_per_block=max(config.mid_block_layers, 1),
            motion_num_attention_heads=config.num_attention_heads,
            motion_norm_num_groups=config.norm_num_groups,
            motion_max_seq_length=config.max_frames,
            use_motion_mid_block=config.mid_block_layers > 0,
        )
        adapter.load_state_dict(self.state_dict())
        return adapter


def _flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for item in value for x in _flatten(item)]
    return [value]


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


def load_temporal_adapter(source: str | Path) -> TemporalAdapter:
    """Temporal layers from a folder or hub id (ours, or a diffusers MotionAdapter) or an AnimateDiff checkpoint file.

    Every failure is a one-line :class:`UsageError`.
    """
    name = str(source)
    path = Path(name).expanduser()
    try:
        with quiet_libraries():
            if looks_like_hub_id(name):
                return TemporalAdapter.from_motion_adapter(MotionAdapter.from_pretrained(name))
            if path.is_file():
                return TemporalAdapter.from_motion_adapter(MotionAdapter.from_single_file(str(path)))
            if not path.is_dir():
                raise UsageError(f"motion adapter not found: {path}")
            if not (path / "config.json").is_file():
                raise UsageError(f"{path} is not a motion adapter folder (no config.json)")
            class_name = TemporalAdapter.load_config(path).get("_class_name")
            if class_name == "TemporalAdapter":
                return TemporalAdapter.from_pretrained(path, local_files_only=True)
            if class_name == "MotionAdapter":
                return TemporalAdapter.from_motion_adapter(MotionAdapter.from_pretrained(path, local_files_only=True))
            raise UsageError(f"{path} holds a {class_name}, not a motion adapter")
    except UsageError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise UsageError(f"cannot load motion adapter {name}: {first_line(err)}") from None
