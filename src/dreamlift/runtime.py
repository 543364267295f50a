"""Where and how a run computes: the device, and the seed of everything random."""

from __future__ import annotations

import random

import numpy as np
import torch

from dreamlift.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``; asking for CUDA where there is none is a UsageError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


SEED_LIMIT = 2**32
"""Seeds lie in [0, 2**32), the range NumPy takes. Every seed the library derives from one then stays far inside
the signed 64-bit range of torch's generators: seed + 1 and seed + 2 (the trainers' other generators), seed + i
(video i of a batch), seed + 10**6 (zero-shot re-noising), seed + crc32(stage) (a staged trainer's batches) and
seed·100003 + an offset up to 10**8 (the chunks of the embedded prior's and the motion layers' training sets). A
bound of 2**63 would let seed + 1 overflow that range, and the products overflow it from seed 2**63 / 100003
≈ 9·10**13 on."""


def check_seed(seed: int, name: str = "seed") -> int:
    """``seed`` if it lies in [0, :data:`SEED_LIMIT`); else a UsageError (a ValueError, so a config's
    ``__post_init__`` may call it) that names ``name`` and the range."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise UsageError(f"{name} must be a whole number between 0 and {SEED_LIMIT - 1} (got {seed!r})")
    return seed


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
