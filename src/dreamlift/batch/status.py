"""The batch's record: ``OUT/status.jsonl`` (one line per attempt event) and completion markers.

Every attempt appends a ``running`` line when it starts and a line with its outcome when it ends (``done``,
``failed``, ``refused`` for a usage error, ``out_of_memory``, ``preempted``, ``lost`` when its worker died); a
job already finished appends ``skipped``. Lines are appended with one ``write`` each in append mode, so workers
on several hosts can share the file. The completion marker ``OUT/<id>/done.json`` is written atomically after
every output of the job: it, not the log, says a job is done.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from dreamlift.batch.manifest import BatchJob
from dreamlift.io import write_text

MARKER = "done.json"
"""Name of the completion marker in a job's folder."""


class RecordedJob(NamedTuple):
    """A job as ``status.jsonl`` names it, for reading a batch without its manifest."""

    id: str
    line: int
    prompt: str


def job_dir(out: Path, job: BatchJob | RecordedJob) -> Path:
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
    fd = os.open(Path(out) / "status.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)
    return record


def read_status(out: Path) -> list[dict]:
    """Every record of ``OUT/status.jsonl`` in order (a torn last line, from a killed writer, is ignored)."""
    path = Path(out) / "status.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


FAILURES = ("failed", "out_of_memory", "lost")
"""Outcomes that use up one of a job's retries (a preemption does not)."""


def history(out: Path, job: BatchJob) -> Counter:
    """How often each outcome has been recorded for ``job`` (``running`` counts its attempts)."""
    return Counter(r["outcome"] for r in read_status(out) if r["id"] == job.id)


def failures(counts: Counter) -> int:
    """Failures among a job's outcome ``counts`` (from :func:`history`)."""
    return sum(counts[outcome] for outcome in FAILURES)


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
        error = str(record.get("error", "")).splitlines()
        states.append(
            JobState(
                job.id,
                job.line,
                job.prompt,
                "done" if is_done(out, job) else record.get("outcome", "pending"),
                attempts[job.id],
                record.get("seconds"),
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
