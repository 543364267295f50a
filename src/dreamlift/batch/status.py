"""The batch's record: ``OUT/status.jsonl`` (one line per attempt event) and completion markers.

Every attempt appends a ``running`` line when it starts and a line with its outcome when it ends (``done``,
``failed``, ``refused`` for a usage error, ``out_of_memory``, ``preempted``, ``lost`` when its worker died); a
job already finished appends ``skipped``. Lines are appended with one ``write`` each in append mode, so workers
on several hosts can share the file. The completion marker ``OUT/<id>/done.json`` is written atomically after
every output of the job: it, not the log, says a job is done.

What the file holds is read as untrusted data (a report may be made of a batch folder from anywhere): a record
whose fields have the wrong types, or whose id is not a plain folder name (``../x``), is a :class:`UsageError`
naming its line, and every path of a job goes through :func:`job_dir`, which refuses such an id too.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from dreamlift.batch.manifest import BatchJob
from dreamlift.errors import UsageError
from dreamlift.io import append_json_line, write_text

MARKER = "done.json"
"""Name of the completion marker in a job's folder."""


class RecordedJob(NamedTuple):
    """A job as ``status.jsonl`` names it, for reading a batch without its manifest."""

    id: str
    line: int
    prompt: str


def is_folder_name(name: object) -> bool:
    """Whether ``name`` is one plain path component, so that ``OUT/<name>`` is a folder right inside ``OUT``: a
    non-empty string, not ``.`` or ``..``, without a slash, a backslash or a NUL. (Ids that
    :func:`dreamlift.batch.manifest.job_id` makes are 16 hex digits; this is the rule a path needs.)"""
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def job_dir(out: Path, job: BatchJob | RecordedJob | JobState) -> Path:
    """``OUT/<id>``, the folder of ``job``; an id that is not a plain folder name is a :class:`UsageError`."""
    if not is_folder_name(job.id):
        raise UsageError(f"job id {job.id!r} is not a folder name")
    return Path(out) / job.id


def is_done(out: Path, job: BatchJob | RecordedJob) -> bool:
    return (job_dir(out, job) / MARKER).is_file()


def mark_done(out: Path, job: BatchJob, record: dict) -> None:
    """Write the completion marker (last, atomically)."""
    write_text(job_dir(out, job) / MARKER, json.dumps(record, indent=2))


def append_status(out: Path, job: BatchJob, outcome: str, **fields) -> dict:
    """Append one line to ``OUT/status.jsonl`` and return it."""
    record = {
        "id": job.id,
        "line": job.line,
        "prompt": job.prompt,
        "outcome": outcome,
        "time": round(time.time(), 3),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **fields,
    }
    append_json_line(Path(out) / "status.jsonl", record)
    return record


RECORD_FIELDS = {
    "id": (lambda value: isinstance(value, str), "a string"),
    "line": (lambda value: isinstance(value, int) and not isinstance(value, bool), "an integer"),
    "prompt": (lambda value: isinstance(value, str), "a string"),
    "outcome": (lambda value: isinstance(value, str), "a string"),
}
"""The fields every record has, each with a test of its type and how the test is said; the others are optional."""


def checked_record(record: object, where: str) -> dict:
    """``record``, decoded from the line of ``status.jsonl`` that ``where`` names, when it is an object with
    :data:`RECORD_FIELDS` of their types and an id that is a plain folder name; else a one-line UsageError."""
    if not isinstance(record, dict):
        raise UsageError(f"{where}: not a JSON object")
    for field, (valid, kind) in RECORD_FIELDS.items():
        if field not in record:
            raise UsageError(f"{where}: has no field {field!r}")
        if not valid(record[field]):
            raise UsageError(f"{where}: field {field!r} must be {kind}")
    if not is_folder_name(record["id"]):
        raise UsageError(f"{where}: job id {record['id']!r} is not a folder name")
    return record


def read_status(out: Path) -> list[dict]:
    """Every record of ``OUT/status.jsonl`` in order, each checked by :func:`checked_record` (a line that cannot be
    decoded, such as a torn last line from a killed writer, is ignored)."""
    path = Path(out) / "status.jsonl"
    if not path.is_file():
        return []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line.decode())
        except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep for the decoder
            continue
        records.append(checked_record(record, f"{path} line {number}"))
    return records


FAILURES = ("failed", "out_of_memory", "lost")
"""Outcomes that use up one of a job's retries (a preemption does not)."""


def history(out: Path, job: BatchJob) -> Counter:
    """How often each outcome has been recorded for ``job`` (``running`` counts its attempts)."""
    return Counter(r["outcome"] for r in read_status(out) if r["id"] == job.id)


def failures(counts: Counter) -> int:
    """Failures among a job's outcome ``counts`` (from :func:`history`)."""
    return sum(counts[outcome] for outcome in FAILURES)


def is_number(value: object) -> bool:
    """Whether a decoded JSON value is a number that can be used as a float (``true`` is not one, nor an integer
    too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, float) or abs(value) <= sys.float_info.max


@dataclass(frozen=True)
class JobState:
    """Where one job of a batch stands, from its completion marker and its last recorded outcome."""

    id: str
    line: int
    """Line of the manifest that asked for it (1-based)."""
    prompt: str
    state: str
    """``done`` (its marker exists), its last outcome (``running``, ``failed``, ``refused``…) or ``pending``."""
    attempts: int
    seconds: float | None
    """Seconds of its last finished attempt, if any."""
    error: str
    """First line of its last attempt's error ('' if none)."""


def job_states(out: Path, jobs: list[BatchJob] | None = None) -> list[JobState]:
    """The state of each of ``jobs``, or, without a manifest's jobs at hand, of every job ``status.jsonl`` records
    (in manifest-line order)."""
    records = read_status(out)
    attempts = Counter(r["id"] for r in records if r["outcome"] == "running")
    last: dict[str, dict] = {}
    for record in records:
        if record["outcome"] != "skipped":
            last[record["id"]] = record
    if jobs is None:
        recorded = {r["id"]: RecordedJob(r["id"], r["line"], r["prompt"]) for r in reversed(records)}
        jobs = sorted(recorded.values(), key=lambda job: (job.line, job.id))
    states = []
    for job in jobs:
        record = last.get(job.id, {})
        seconds, error = record.get("seconds"), record.get("error")
        if not is_number(seconds):
            seconds = None  # an optional field of another type counts as absent
        error = error.splitlines() if isinstance(error, str) else []
        states.append(
            JobState(
                job.id,
                job.line,
                job.prompt,
                "done" if is_done(out, job) else record.get("outcome", "pending"),
                attempts[job.id],
                seconds,
                error[0] if error else "",
            )
        )
    return states


def summary_table(out: Path, jobs: list[BatchJob]) -> str:
    """A table of the jobs (state, attempts, seconds, error) and a line of totals."""
    rows, states = [], Counter()
    for job in job_states(out, jobs):
        states[job.state] += 1
        seconds = f"{job.seconds:.0f}" if job.seconds is not None else ""
        prompt = job.prompt if len(job.prompt) <= 36 else job.prompt[:35] + "…"
        rows.append(
            f"{job.id}  {job.line:>5}  {job.state:<13}  {job.attempts:>8}  {seconds:>7}  {prompt:<36}  {job.error}"
        )
    header = f"{'id':<16}  {'line':>5}  {'state':<13}  {'attempts':>8}  {'seconds':>7}  {'prompt':<36}  error"
    totals = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    return "\n".join([header, *rows, f"{len(jobs)} jobs: {totals or 'none'}"])
