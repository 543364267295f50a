"""A batch job's progress on disk: ``OUT/<id>/progress.json``, rewritten (atomically) as the job goes, so that
whoever watches the batch — the studio's page — sees each running job's stage, step, time left, loss and newest
picture without talking to its worker, on any backend and after the watcher restarts.

The file is data from a worker and is read as untrusted (:func:`read_progress` checks every field's type, and
that the picture it names lies inside the job's folder).
"""

from __future__ import annotations

import time
from pathlib import Path

from dreamlift.batch.status import is_number
from dreamlift.config import is_inside
from dreamlift.errors import UsageError
from dreamlift.io import read_json_object, write_json
from dreamlift.progress import Progress

PROGRESS_FILE = "progress.json"
"""Its name in the job's folder."""
WRITE_EVERY_S = 0.25
"""Seconds between two writes at most; a stage's first and last steps and a new picture are written at once."""


class ProgressFile:
    """A progress callback (:data:`dreamlift.progress.ProgressCallback`) that keeps ``folder/progress.json``:
    ``stage`` and ``title`` (what runs), ``step`` of ``steps``, ``loss``, ``eta_s`` (seconds this stage has left at
    its pace so far; null until it has one), ``preview`` (the newest picture, a path relative to the folder, kept
    from record to record) and ``time`` (when it was written, seconds since the epoch)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.stage: str | None = None
        self.stage_started = 0.0
        self.first_step = 0
        self.preview: str | None = None
        self.written = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.time()
        new_stage = progress.stage != self.stage
        if new_stage:  # its pace is counted from this, the first step it reports (a resumed stage's included)
            self.stage, self.stage_started, self.first_step = progress.stage, now, progress.step
        if progress.preview is not None:
            self.preview = Path(progress.preview).relative_to(self.folder).as_posix()
        last = progress.step >= progress.steps
        if not (new_stage or last or progress.preview is not None or now - self.written >= WRITE_EVERY_S):
            return
        done = progress.step - self.first_step
        eta = (now - self.stage_started) / done * (progress.steps - progress.step) if done > 0 else None
        record = {
            "stage": progress.stage,
            "title": progress.title or progress.stage,
            "step": progress.step,
            "steps": progress.steps,
            "loss": progress.loss,
            "eta_s": None if eta is None else round(eta, 1),
            "preview": self.preview,
            "time": round(now, 3),
        }
        write_json(self.folder / PROGRESS_FILE, record)
        self.written = now


PROGRESS_FIELDS = {
    "stage": lambda value: isinstance(value, str),
    "title": lambda value: isinstance(value, str),
    "step": lambda value: isinstance(value, int) and is_number(value),
    "steps": lambda value: isinstance(value, int) and is_number(value),
    "loss": lambda value: value is None or is_number(value),
    "eta_s": lambda value: value is None or is_number(value),
    "preview": lambda value: value is None or isinstance(value, str),
    "time": is_number,
}
"""Every field of a progress record, each with the test of its type."""


def read_progress(folder: Path) -> dict | None:
    """The job's progress record (:class:`ProgressFile`), or None when it has none or the file is not one (a field
    missing or of the wrong type, a picture outside the folder)."""
    path = Path(folder) / PROGRESS_FILE
    if not path.is_file():
        return None
    try:
        record = read_json_object(path)
    except UsageError:
        return None
    if any(field not in record or not valid(record[field]) for field, valid in PROGRESS_FIELDS.items()):
        return None
    preview = record["preview"]
    if preview is not None and (Path(preview).is_absolute() or not is_inside(Path(folder) / preview, folder)):
        return None
    return {field: record[field] for field in PROGRESS_FIELDS}
