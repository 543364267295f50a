"""One checkpoint format for every resumable loop (text3d's stages, the prior's and the motion model's training).

A checkpoint is a dict written atomically with ``torch.save``: the state dict of each named object (modules,
optimisers, guidance — anything with ``state_dict``/``load_state_dict``, or a list of such), the state of each
named random generator, optionally torch's global random state, and any plain extras (the step, metrics, …).
Reading returns the whole dict (extras included); restoring puts every state back into the same objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch

from dreamlift.io import save_torch


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


def save_checkpoint(
    path: Path,
    objects: dict[str, Stateful | list[Stateful]],
    generators: dict[str, torch.Generator],
    global_rng_device: torch.device | None = None,
    **extras: Any,
) -> None:
    """Write the states of ``objects`` and ``generators`` (and, with ``global_rng_device``, torch's global CPU
    random state and that device's CUDA one) with ``extras`` to ``path``, atomically."""
    state: dict[str, Any] = dict(extras)
    for name, obj in objects.items():
        state[name] = [item.state_dict() for item in obj] if isinstance(obj, list) else obj.state_dict()
    for name, generator in generators.items():
        state[name] = generator.get_state()
    if global_rng_device is not None:
        state["torch_rng"] = torch.get_rng_state()
        cuda = global_rng_device.type == "cuda"
        state["cuda_rng"] = torch.cuda.get_rng_state(global_rng_device) if cuda else None
    save_torch(path, state)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The dict :func:`save_checkpoint` wrote at ``path``, every tensor on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=False)


def restore_checkpoint(
    state: dict[str, Any],
    objects: dict[str, Stateful | list[Stateful]],
    generators: dict[str, torch.Generator],
    global_rng_device: torch.device | None = None,
) -> None:
    """Put the states of a checkpoint (from :func:`read_checkpoint`) back into the objects it was saved from."""
    for name, obj in objects.items():
        if isinstance(obj, list):
            for item, item_state in zip(obj, state[name], strict=True):
                item.load_state_dict(item_state)
        else:
            obj.load_state_dict(state[name])
    for name, generator in generators.items():
        generator.set_state(state[name])
    if global_rng_device is not None:
        torch.set_rng_state(state["torch_rng"])
        if global_rng_device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], global_rng_device)
