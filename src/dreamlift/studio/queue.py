"""The studio's queue: the jobs its form asked for, in the order asked, kept on disk so that a restarted studio
takes them up again.

The studio's folder is a batch folder (:mod:`dreamlift.batch`): each job runs in ``<id>/`` and ``status.jsonl``
records its attempts. ``queue.jsonl`` beside them is the studio's manifest, one line per submission: the job's
command, id, resolved config and when it was asked for. A job is made from the form as a batch makes one from a
manifest line (:func:`dreamlift.batch.manifest.resolve_job`), so it is checked the same way and gets the same
id for the same settings: a job asked for again is the same job (resumed if it was stopped, shown if it is done).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamlift.batch.commands import COMMANDS
from dreamlift.batch.manifest import BatchJob, resolve_job
from dreamlift.batch.status import is_folder_name
from dreamlift.errors import UsageError
from dreamlift.io import append_json_line, atomic_path
from dreamlift.priors.diffusion import looks_like_hub_id
from dreamlift.text3d.reference import ReferenceConfig, read_picture

QUEUE_FILE = "queue.jsonl"
"""The studio's manifest in its folder."""
UPLOADS = "uploads"
"""Where pictures sent with the form (image-to-3D) are kept in the studio's folder, named by their hash."""
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
MAX_PICTURE_BYTES = 20 * 2**20


@dataclass(frozen=True)
class QueuedJob:
    """A job of the studio and when it was last asked for (seconds since the epoch)."""

    job: BatchJob
    submitted: float


class JobQueue:
    """``FOLDER/queue.jsonl``: the studio's jobs, appended to by :meth:`submit` (from any thread)."""

    def __init__(self, folder: Path, live_view_every_s: float):
        self.folder = Path(folder)
        self.live_view_every_s = live_view_every_s
        self._lock = threading.Lock()
        self._read: tuple[tuple[int, int] | None, list[QueuedJob]] = (None, [])
        """The queue file's size and change time when last read, and what it held."""

    def jobs(self) -> list[QueuedJob]:
        """Every job asked for, in the order first asked (a line that is not one of this file's is skipped); read
        again only when the file has changed."""
        path = self.folder / QUEUE_FILE
        try:
            stamp = path.stat().st_size, path.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if stamp != self._read[0]:
            self._read = stamp, read_queue(path)
        return self._read[1]

    def submit(self, form: dict[str, Any]) -> BatchJob:
        """Queue the job the form describes (see :func:`form_entry`); a bad form is a UsageError, and nothing is
        queued."""
        kind = form.get("kind", "text3d")
        if kind not in COMMANDS:
            raise UsageError(f"unknown kind of job {kind!r} (known: {', '.join(COMMANDS)})")
        entry, settings = form_entry(form, self.folder)
        if kind == "text3d":  # the live view first, so that the form's own settings may change it
            settings = [f"train.live_view_every_s={self.live_view_every_s}", *settings]
        with self._lock:
            known = {queued.job.id: queued.job for queued in self.jobs()}
            job = resolve_job(kind, len(known) + 1, entry, None, settings, self.folder)
            job = known.get(job.id, job)
            line = {"kind": kind, "id": job.id, "line": job.line, "config": job.config, "submitted": time.time()}
            append_json_line(self.folder / QUEUE_FILE, line)
        return job


def read_queue(path: Path) -> list[QueuedJob]:
    """The jobs of a queue file, each once, in the order first asked, with the time it was last asked for."""
    jobs: dict[str, QueuedJob] = {}
    for raw in path.read_bytes().splitlines():
        try:
            entry = json.loads(raw.decode())
            kind, job_id, config = entry["kind"], entry["id"], entry["config"]
            line, submitted = int(entry["line"]), float(entry["submitted"])
        except (ValueError, TypeError, KeyError):  # a torn last line, or not a line of this file
            continue
        if kind not in COMMANDS or not is_folder_name(job_id) or not isinstance(config, dict):
            continue
        first = jobs.get(job_id)
        jobs[job_id] = QueuedJob(first.job if first else BatchJob(kind, job_id, line, config), submitted)
    return list(jobs.values())


def whole_number(form: dict[str, Any], name: str) -> int | None:
    """The form's ``name`` as an integer, None when it is left empty."""
    value = form.get(name)
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not {value!r}") from None


def form_entry(form: dict[str, Any], folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The manifest entry and the dotted settings of a form: ``prompt``, ``config`` (a preset's name), ``seed``,
    ``steps``, ``model`` (``embedded``, a folder or a hub id), ``settings`` (dotted overrides, one a line) and
    ``image`` (``{"name": …, "data": base64}``, kept in ``uploads/``)."""
    prompt = form.get("prompt", "")
    if not isinstance(prompt, str):
        raise UsageError("the prompt must be text")
    entry: dict[str, Any] = {"prompt": prompt}
    for name in ("config", "model"):
        value = form.get(name)
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{name} must be text")
    if form.get("config"):
        entry["config"] = form["config"]
    if form.get("model"):
        entry["prior.model"] = checked_model(form["model"].strip())
    for name in ("seed", "steps"):
        number = whole_number(form, name)
        if number is not None:
            entry[name] = number
    if form.get("image"):
        entry["image"] = keep_picture(form["image"], folder)
    settings = form.get("settings") or ""
    if not isinstance(settings, str):
        raise UsageError("settings must be text: one dotted key=value a line")
    lines = [line.strip() for line in settings.splitlines() if line.strip() and not line.strip().startswith("#")]
    for line in lines:
        if "=" not in line:
            raise UsageError(f"setting {line!r} is not key=value (e.g. train.resolution=32)")
    return entry, lines


def checked_model(model: str) -> str:
    """The form's model as it is; a local folder that does not exist is a UsageError here, not when the job runs
    (``embedded`` and hub ids are checked when the job loads them)."""
    if model != "embedded" and not looks_like_hub_id(model) and not Path(model).expanduser().is_dir():
        raise UsageError(f"model folder not found: {model}")
    return model


def keep_picture(image: Any, folder: Path) -> str:
    """Write a picture sent with the form to ``uploads/<hash><suffix>`` in ``folder`` (once) and return that path,
    relative to ``folder``; a picture that is not one dreamlift reads is a UsageError, and is not kept."""
    if not isinstance(image, dict) or not isinstance(image.get("data"), str):
        raise UsageError("the picture must come as {name, data (base64)}")
    suffix = Path(str(image.get("name", ""))).suffix.lower()
    if suffix not in PICTURE_SUFFIXES:
        raise UsageError(f"the picture must be one of {', '.join(PICTURE_SUFFIXES)} (got {suffix or 'no suffix'!r})")
    try:
        data = base64.b64decode(image["data"], validate=True)
    except (binascii.Error, ValueError):
        raise UsageError("the picture's data is not base64") from None
    if not data or len(data) > MAX_PICTURE_BYTES:
        raise UsageError(f"the picture must hold 1 byte to {MAX_PICTURE_BYTES // 2**20} MiB")
    name = f"{UPLOADS}/{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    path = folder / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
            try:
                read_picture(tmp, ReferenceConfig().background_tolerance)
            except UsageError as err:  # named as the user named it, not by the temporary file's name
                raise UsageError(str(err).replace(str(tmp), repr(str(image.get("name"))))) from None
    return name
