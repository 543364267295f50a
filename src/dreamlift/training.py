"""Resumable staged training, shared by the embedded prior and the motion model.

A trainer runs named stages in order inside a work folder. Each stage's completion (with its measurements)
is recorded in ``log.json`` and a finished stage is skipped, so an interrupted run picks up where it
stopped; inside a stage, :meth:`StagedTrainer.train_loop` checkpoints models, optimiser and random state.
Raising a training stage's step count in a finished work folder trains that stage longer from its last
checkpoint (see :meth:`StagedTrainer.train_longer`).
"""

from __future__ import annotations

import json
import math
import platform
import time
import zlib
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from dreamlift.outputs import save_torch, write_text


class StagedTrainer:
    """Base class: subclasses list ``stages`` and implement ``stage_<name>()`` returning a dict of measurements."""

    stages: tuple[str, ...] = ()

    def __init__(self, work: Path, seed: int, checkpoint_every: int, device: str = "cpu"):
        self.work, self.seed, self.checkpoint_every, self.device = Path(work), seed, checkpoint_every, torch.device(device)
        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / "log.json"
        self.log: dict = json.loads(path.read_text()) if path.exists() else {"stages": {}}

    def train_longer(self, stage: str, steps: int, dependents: tuple[str, ...]) -> None:
        """Reopen the finished training ``stage`` when ``steps`` exceeds the steps it recorded.

        It then resumes from its checkpoint up to ``steps`` (a schedule over ``steps`` stretches, so the learning
        rate rises again where the shorter run ended), and ``dependents``, the stages built on its result, run
        again after it. The earlier record is kept under ``"earlier"`` in the stage's new one.
        """
        record = self.log["stages"].get(stage, {})
        if record.get("done") and record.get("steps", steps) < steps:
            self.log["stages"][stage] = {"done": False, "earlier": record.get("earlier", []) + [record]}
            for name in dependents:
                self.log["stages"].pop(name, None)

    def _write_log(self) -> None:
        write_text(self.work / "log.json", json.dumps(self.log, indent=2))

    def run(self) -> None:
        hardware = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        if self.device.type == "cuda":
            hardware = torch.cuda.get_device_name(self.device)
        self.log.setdefault("hardware", hardware)
        for stage in self.stages:
            record = self.log["stages"].get(stage, {})
            if not record.get("done", False):
                start = time.time()
                info = getattr(self, f"stage_{stage}")() or {}
                earlier = {"earlier": record["earlier"]} if "earlier" in record else {}
                self.log["stages"][stage] = {"done": True, "seconds": round(time.time() - start, 1), **info, **earlier}
                self._write_log()

    def train_loop(
        self,
        stage: str,
        modules: dict[str, torch.nn.Module],
        optimizer: torch.optim.Optimizer,
        steps: int,
        step_fn: Callable[[int, torch.Generator], torch.Tensor],
    ) -> float:
        """Run ``steps`` optimiser steps, resuming from ``<stage>.ckpt``; returns the mean of the last 100 losses.

        ``step_fn(step, generator)`` returns the loss of one batch; ``generator`` (CPU) draws all its randomness.
        """
        ckpt_path = self.work / f"{stage}.ckpt"
        step, generator = 0, torch.Generator().manual_seed(self.seed + zlib.crc32(stage.encode()))
        if ckpt_path.exists():
            state = torch.load(ckpt_path, weights_only=False)
            for name, module in modules.items():
                module.load_state_dict(state[name])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            step = state["step"]
        losses: list[float] = []
        progress = tqdm(total=steps, initial=step, desc=stage, unit="step")
        while step < steps:
            loss = step_fn(step, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            progress.update(1)
            if step % 20 == 0:
                progress.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.4f}")
            if step % self.checkpoint_every == 0 or step == steps:
                state = {name: module.state_dict() for name, module in modules.items()}
                state.update(optimizer=optimizer.state_dict(), generator=generator.get_state(), step=step)
                save_torch(ckpt_path, state)
        progress.close()
        tail = losses[-100:]
        return sum(tail) / len(tail) if tail else float("nan")


def set_warmup_cosine_lr(
    optimizer: torch.optim.Optimizer, peak: float, step: int, steps: int, warmup: int | None = None
) -> None:
    """Set the learning rate of ``step`` (0-based) of ``steps``: linear warm-up to ``peak`` over ``warmup`` steps
    (default: a tenth of ``steps``, at most 100), then cosine decay to a tenth of ``peak`` at ``steps``."""
    warmup = warmup or min(100, steps // 10 + 1)
    cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))
    for group in optimizer.param_groups:
        group["lr"] = peak * min(1.0, (step + 1) / warmup) * cosine


def min_snr_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float, prediction_type: str = "epsilon") -> torch.Tensor:
    """Per-sample loss weights of min-SNR weighting (Hang et al. 2023): min(SNR, γ)/SNR for an ε target,
    min(SNR, γ)/(SNR + 1) for a v target; ones when γ is 0."""
    if gamma <= 0:
        return torch.ones(t.shape, device=alphas_cumprod.device)
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    return snr.clamp(max=gamma) / (snr + 1 if prediction_type == "v_prediction" else snr)


def clean_sample_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, cap: float, prediction_type: str = "epsilon") -> torch.Tensor:
    """Per-sample weights that turn the MSE of an ε (or v) target into the MSE of the clean sample it implies,
    1/SNR (or 1/(SNR + 1)), capped at ``cap``: large at high noise, where an ε loss barely sees the clean sample."""
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    return (1 / (snr + 1 if prediction_type == "v_prediction" else snr)).clamp(max=cap)
