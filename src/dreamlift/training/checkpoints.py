"""One checkpoint format for every resumable loop (text3d's stages, the prior's and the motion adapter's training).

A checkpoint is a dict written atomically with ``torch.save``: the state dict of each named object (modules,
optimisers, guidance — anything with ``state_dict``/``load_state_dict``, or a list of such), the state of each
named random generator, optionally torch's global random state, and any plain extras (the step, metrics, …).
Reading returns the whole dict (extras included); restoring puts every state back into the same objects.

Checkpoints hold tensors and plain data only and are read with torch's ``weights_only`` unpickler, so a checkpoint
from elsewhere cannot run code; one that is not a dreamlift checkpoint, or does not fit the objects it is
restored into, is a :class:`~dreamlift.errors.UsageError` naming the file, raised before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch

from dreamlift.errors import UsageError, first_line
from dreamlift.io import load_torch, save_torch


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


def read_checkpoint(path: Path, required: dict[str, type | tuple[type, ...]] | None = None) -> dict[str, Any]:
    """The dict :func:`save_checkpoint` wrote at ``path``, every tensor on the CPU; ``required`` maps the keys it
    must hold to their types (e.g. ``{"step": int}``). Anything else is a :class:`UsageError`."""
    state = load_torch(path)
    if not isinstance(state, dict):
        raise UsageError(f"{path} is not a dreamlift checkpoint (it holds a {type(state).__name__}, not a mapping)")
    for key, kind in (required or {}).items():
        if key not in state:
            raise UsageError(f"{path} is not a dreamlift checkpoint of this kind (it has no '{key}')")
        if not isinstance(state[key], kind) or isinstance(state[key], bool) and kind is int:
            raise UsageError(f"{path} is not a dreamlift checkpoint: its '{key}' is a {type(state[key]).__name__}")
    return state


def restore_checkpoint(
    path: Path,
    state: dict[str, Any],
    objects: dict[str, Stateful | list[Stateful]],
    generators: dict[str, torch.Generator],
    global_rng_device: torch.device | None = None,
) -> None:
    """Put the states of the checkpoint read from ``path`` (by :func:`read_checkpoint`) back into the objects it
    was saved from. A state that does not fit its object is a :class:`UsageError` naming ``path`` (the objects
    are then half restored: the caller abandons them, having written nothing yet)."""
    try:
        for name, obj in objects.items():
            items, states = (obj, state[name]) if isinstance(obj, list) else ([obj], [state[name]])
            if not isinstance(states, list) or len(states) != len(items):
                raise ValueError(f"'{name}' does not hold one state for each of {len(items)} objects")
            for item, item_state in zip(items, states):
                item.load_state_dict(item_state)
        for name, generator in generators.items():
            generator.set_state(state[name])
        if global_rng_device is not None:
            torch.set_rng_state(state["torch_rng"])
            if global_rng_device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], global_rng_device)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as err:
        raise UsageError(f"{path} does not fit this run: {first_line(err)[:200]}") from None
