"""Resumable staged training, shared by the embedded prior and the motion adapter.

A trainer runs named stages in order inside a work folder. Each stage's completion (with its measurements)
is recorded in ``log.json`` and a finished stage is skipped, so an interrupted run picks up where it
stopped; inside a stage, :meth:`StagedTrainer.train_loop` checkpoints models, optimiser and random state.
Raising a training stage's step count in a finished work folder trains that stage longer from its last
checkpoint (see :meth:`StagedTrainer.train_longer`).
"""

from __future__ import annotations

import json
import platform
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from dreamlift.io import read_json_object, write_text
from dreamlift.training.checkpoints import read_checkpoint, restore_checkpoint, save_checkpoint


class StagedTrainer:
    """Base class: subclasses list ``stages`` and implement ``stage_<name>()`` returning a dict of measurements."""

    stages: tuple[str, ...] = ()

    def __init__(self, work: Path, seed: int, checkpoint_every: int, device: str = "cpu"):
        self.work, self.seed, self.checkpoint_every, self.device = (
            Path(work),
            seed,
            checkpoint_every,
            torch.device(device),
        )
        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / "log.json"
        self.log: dict = read_json_object(path) if path.exists() else {"stages": {}}

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
        objects, generators = {**modules, "optimizer": optimizer}, {"generator": generator}
        if ckpt_path.exists():
            state = read_checkpoint(ckpt_path, {"step": int})
            restore_checkpoint(ckpt_path, state, objects, generators)
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
                save_checkpoint(ckpt_path, objects, generators, step=step)
        progress.close()
        tail = losses[-100:]
        return sum(tail) / len(tail) if tail else float("nan")
