"""What a folder holds, for the report: a text3d run (or its refine folder), a text2video output, or a batch.

A folder's files are data from anywhere: a metrics.json is checked once, as it is read, for the types of the fields
the pages use (:data:`METRICS_FIELDS`), so that the pages can take them as they are.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from dreamlift.batch.status import is_number
from dreamlift.errors import UsageError
from dreamlift.io import read_json_object


class FolderKind(Enum):
    TEXT3D = "text3d run"
    TEXT2VIDEO = "text2video output"
    BATCH = "batch"


METRICS_FIELDS = {
    "prompt": (lambda value: isinstance(value, str), "a string"),
    "mode": (lambda value: isinstance(value, str), "a string"),
    "stage": (lambda value: isinstance(value, str), "a string"),
    "steps": (lambda value: isinstance(value, int) and is_number(value), "an integer"),
    "train_seconds": (is_number, "a number"),
    "seconds_per_step": (is_number, "a number"),
    "phase_seconds": (
        lambda value: isinstance(value, dict) and all(is_number(seconds) for seconds in value.values()),
        "an object of numbers",
    ),
    "export": (lambda value: isinstance(value, dict), "an object"),
    "loss": (
        lambda value: (
            isinstance(value, list)
            and all(isinstance(pair, list) and len(pair) == 2 and all(map(is_number, pair)) for pair in value)
        ),
        "a list of [step, value] pairs",
    ),
}
"""The fields of a metrics.json that the report reads, each with a test of its type and how the test is said (the
text2video page shows the other fields as text; the export's statistics are shown as text too)."""


def read_metrics(folder: Path) -> dict:
    """A run folder's metrics.json, or {} when it has none yet (a run in progress), it cannot be read or it is not
    a JSON object; a :data:`METRICS_FIELDS` field of the wrong type is a :class:`UsageError` naming the file."""
    path = folder / "metrics.json"
    try:
        metrics = read_json_object(path)
    except UsageError:
        return {}
    for field, (valid, kind) in METRICS_FIELDS.items():
        if field in metrics and not valid(metrics[field]):
            raise UsageError(f"{path}: field {field!r} must be {kind}")
    return metrics


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
