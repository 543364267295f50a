"""Multi-resolution hash-grid encoding (Instant-NGP, Müller et al. 2022), in pure PyTorch or via tinycudann.

The pure-PyTorch encoding follows tinycudann's ``HashGrid`` exactly, so either can stand in for the other:
level l has scale s_l = base · b^l − 1 (b the per-level growth), resolution ⌈s_l⌉ + 1, and a table of
min(resolution³ rounded up to a multiple of 8, 2^log2_hashmap_size) entries; a level whose dense grid fits its
table is indexed densely, a finer one through the XOR-of-primes hash; positions are scaled as x·s_l + ½ and
trilinearly interpolated; tables start uniform in ±1e-4. The tables are stored as one flat parameter in
tinycudann's order, so :meth:`HashGridEncoding.load_tcnn_params` copies a tinycudann encoding's weights.
tinycudann is imported lazily, only when asked for on CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from dreamlift.errors import UsageError

PRIMES = (1, 2654435761, 805459861)
"""tinycudann's coherent hash primes, one per dimension."""


@dataclass
class HashGridConfig:
    """Hash-grid encoding settings (names as in tinycudann's HashGrid); the defaults are Instant-NGP's."""

    num_levels: int = 16
    """Number of resolution levels L."""
    features_per_level: int = 2
    """Features F per level; the encoding has L·F outputs."""
    log2_hashmap_size: int = 19
    """log2 of the largest table size per level."""
    base_resolution: int = 16
    """Resolution of the coarsest level."""
    max_resolution: int = 2048
    """Resolution of the finest level; sets the per-level growth b = (max/base)^(1/(L−1))."""
    backend: Literal["auto", "torch", "tcnn"] = "auto"
    """``auto``: tinycudann on CUDA when importable, else pure PyTorch; ``tcnn`` fails if it is unavailable."""

    def __post_init__(self):
        if self.num_levels < 1 or self.features_per_level < 1:
            raise ValueError("num_levels and features_per_level must be >= 1")
        if not 1 <= self.log2_hashmap_size <= 30:
            raise ValueError("log2_hashmap_size must lie in [1, 30]")
        if not 1 <= self.base_resolution <= self.max_resolution:
            raise ValueError("need 1 <= base_resolution <= max_resolution")

    @property
    def per_level_scale(self) -> float:
        if self.num_levels == 1:
            return 1.0
        return math.exp(math.log(self.max_resolution / self.base_resolution) / (self.num_levels - 1))

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.features_per_level


def level_layout(config: HashGridConfig) -> tuple[list[float], list[int], list[int]]:
    """Per level: scale s_l, resolution, and table size, exactly as tinycudann computes them."""
    scales, resolutions, sizes = [], [], []
    log2_scale = math.log2(config.per_level_scale)
    for level in range(config.num_levels):
        scale = 2.0 ** (level * log2_scale) * config.base_resolution - 1.0
        resolution = math.ceil(scale) + 1
        dense = resolution**3
        size = min(((dense + 7) // 8) * 8, 2**config.log2_hashmap_size)
        scales.append(scale)
        resolutions.append(resolution)
        sizes.append(size)
    return scales, resolutions, sizes


class HashGridEncoding(nn.Module):
    """Pure-PyTorch hash grid: positions N×3 in [0, 1] → features N×(L·F) (float32)."""

    def __init__(self, config: HashGridConfig):
        super().__init__()
        self.config = config
        scales, resolutions, sizes = level_layout(config)
        offsets = [0]
        for size in sizes:
            offsets.append(offsets[-1] + size)
        hashed = [r**3 > s for r, s in zip(resolutions, sizes)]
        # Levels fall in two groups: coarse ones indexed densely (x + y·R + z·R²), fine ones hashed.
        self.dense_levels = [i for i, h in enumerate(hashed) if not h]
        self.hashed_levels = [i for i, h in enumerate(hashed) if h]
        strides = [[1, r, r * r] for r in resolutions]
        self.register_buffer("scales", torch.tensor(scales, dtype=torch.float32), persistent=False)
        self.register_buffer("strides", torch.tensor(strides, dtype=torch.int64), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets[:-1], dtype=torch.int64), persistent=False)
        self.register_buffer("primes", torch.tensor(PRIMES, dtype=torch.int64), persistent=False)
        self.hash_mask = 2**config.log2_hashmap_size - 1  # hashed levels' tables hold exactly 2^log2 entries
        self.table = nn.Parameter(torch.empty(offsets[-1], config.features_per_level).uniform_(-1e-4, 1e-4))

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        n, levels = positions.shape[0], self.config.num_levels
        pos = positions.float()[:, None, :] * self.scales[None, :, None] + 0.5  # N×L×3
        cell = torch.floor(pos)
        frac = pos - cell
        coords = cell.long()[..., None] + torch.arange(2, device=pos.device)  # N×L×3×2: lower/upper corner per axis
        index = torch.empty(n, levels, 2, 2, 2, dtype=torch.int64, device=pos.device)
        if self.dense_levels:
            lv = self.dense_levels
            terms = coords[:, lv] * self.strides[lv][None, :, :, None]
            index[:, lv] = terms[:, :, 0, :, None, None] + terms[:, :, 1, None, :, None] + terms[:, :, 2, None, None, :]
        if self.hashed_levels:
            lv = self.hashed_levels
            terms = (coords[:, lv] * self.primes[None, None, :, None]) & 0xFFFFFFFF
            mixed = terms[:, :, 0, :, None, None] ^ terms[:, :, 1, None, :, None] ^ terms[:, :, 2, None, None, :]
            index[:, lv] = mixed & self.hash_mask
        index = index.reshape(n, levels, 8) + self.offsets[None, :, None]
        w = torch.stack([1 - frac, frac], dim=-1)  # N×L×3×2
        weights = (w[:, :, 0, :, None, None] * w[:, :, 1, None, :, None] * w[:, :, 2, None, None, :]).reshape(
            n, levels, 8
        )
        # index_select rather than table[index]: the gradient of advanced indexing adds colliding entries in an
        # order that depends on the threads, so two runs of one seed drift apart; index_select's (index_add) does
        # not, and is faster on a CPU.
        features = self.table.index_select(0, index.reshape(-1)).view(n, levels, 8, self.table.shape[1])  # N×L×8×F
        return (weights[..., None] * features).sum(dim=2).reshape(n, self.output_dim)

    @torch.no_grad()
    def load_tcnn_params(self, params: torch.Tensor) -> None:
        """Copy a tinycudann HashGrid's flat parameter vector (same config) into this encoding."""
        self.table.copy_(params.float().reshape_as(self.table))


class TcnnHashGridEncoding(nn.Module):
    """tinycudann's fused CUDA hash grid with the same config and the same outputs (N×(L·F), float32)."""

    def __init__(self, config: HashGridConfig):
        super().__init__()
        import tinycudann as tcnn

        self.config = config
        self.encoding = tcnn.Encoding(
            3,
            {
                "otype": "HashGrid",
                "n_levels": config.num_levels,
                "n_features_per_level": config.features_per_level,
                "log2_hashmap_size": config.log2_hashmap_size,
                "base_resolution": config.base_resolution,
                "per_level_scale": config.per_level_scale,
                "interpolation": "Linear",
            },
            dtype=torch.float32,
        )

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.encoding(positions.float()).float()


def tcnn_available() -> bool:
    """Whether tinycudann can be imported (checked lazily, never at module import)."""
    try:
        import tinycudann  # noqa: F401
    except Exception:  # tinycudann raises various errors when its CUDA build does not match
        return False
    return True


def make_hash_grid(config: HashGridConfig, device: torch.device) -> nn.Module:
    """The encoding the config and device call for (see :attr:`HashGridConfig.backend`)."""
    use_tcnn = config.backend == "tcnn" or (config.backend == "auto" and device.type == "cuda" and tcnn_available())
    if use_tcnn:
        if device.type != "cuda" or not tcnn_available():
            raise UsageError("hashgrid backend 'tcnn' needs CUDA and an importable tinycudann")
        return TcnnHashGridEncoding(config)
    return HashGridEncoding(config)
