"""What a folder holds, for the report: a text3d run (or its refine folder), a text2video output, or a batch."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

from dreamlift.errors import UsageError


class FolderKind(Enum):
    TEXT3D = "text3d run"
    TEXT2VIDEO = "text2video output"
    BATCH = "batch"


def read_metrics(folder: Path) -> dict:
    """A run folder's metrics.json, or {} when it has none yet (a run in progress) or it cannot be read."""
    try:
        return json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def folder_kind(folder: Path) -> FolderKind | None:
    """What ``folder`` holds: a batch (``status.jsonl``), a text2video output (metrics naming a ``mode``), a text3d
    run or refine folder (``config.yaml`` with a stage's metrics or a checkpoint); None for anything else."""
    if (folder / "status.jsonl").is_file():
        return FolderKind.BATCH
    metrics = read_metrics(folder)
    if "mode" in metrics:
        return FolderKind.TEXT2VIDEO
    if (folder / "config.yaml").is_file() and ("stage" in metrics or (folder / "checkpoints" / "last.pt").is_file()):
        return FolderKind.TEXT3D
    return None


def checked_kind(folder: Path) -> FolderKind:
    """:func:`folder_kind`, a :class:`UsageError` when the folder is missing or holds nothing to report."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    kind = folder_kind(folder)
    if kind is None:
        raise UsageError(
            f"{folder} holds no text3d run, text2video output or batch "
            "(no config.yaml with metrics.json or a checkpoint, no status.jsonl)"
        )
    return kind
