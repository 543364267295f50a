"""Wall-clock time per phase of a training step (render, encode, U-Net, backward, optimiser).

``with timer("render"): ...`` adds the block's duration to the phase's total. On CUDA the timer synchronises
before reading the clock, so asynchronous kernels are charged to the phase that launched them; pass
``enabled=False`` to skip that cost.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator

import torch


class PhaseTimer:
    def __init__(self, device: torch.device, enabled: bool = True):
        self.sync = device.type == "cuda"
        self.enabled = enabled
        self.totals: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        if self.sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        yield
        if self.sync:
            torch.cuda.synchronize()
        self.totals[phase] += time.perf_counter() - start
        self.counts[phase] += 1

    def means(self) -> dict[str, float]:
        """Mean seconds per call of each phase."""
        return {phase: self.totals[phase] / self.counts[phase] for phase in self.totals}
