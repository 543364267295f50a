"""Writing a report: the pages are built in a temporary folder beside ``DIR/report`` and swapped in whole, so a
reader sees the old report or the new one, never half of one."""

from __future__ import annotations

import errno
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from dreamlift.batch.status import JobState, job_dir, job_states
from dreamlift.errors import UsageError
from dreamlift.io import write_text
from dreamlift.report.batch_page import batch_page, has_run
from dreamlift.report.folders import FolderKind, checked_kind
from dreamlift.report.html import VIEWER_SCRIPT
from dreamlift.report.run_page import run_page

ASSET_FILES = (
    VIEWER_SCRIPT,
    "LICENSE-model-viewer.txt",
    "THIRD-PARTY-NOTICES.txt",
    "viewer.js",
    "batch.js",
    "report.css",
)
"""What ``report/assets/`` holds: the viewer with its licences, the pages' scripts and their stylesheet."""


def report_folder(folder: Path) -> Path:
    """Where the report of ``folder`` is written."""
    return Path(folder) / "report"


def write_report(folder: Path, jobs: list[JobState] | None = None) -> Path:
    """Write the report of a run, refine, text2video or batch folder and return its ``index.html``.

    ``jobs``: a batch's jobs with their states (the manifest's, so that jobs not started yet are listed); without
    them, the jobs that the batch's ``status.jsonl`` records. A folder with nothing to report is a
    :class:`UsageError`, raised before anything is written.
    """
    folder = Path(folder)
    kind = checked_kind(folder)
    target = report_folder(folder)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".report.", dir=folder))
        staging.chmod(0o755)  # mkdtemp makes it private; a report is for sharing
    except OSError as err:
        raise UsageError(f"cannot write the report in {folder}: {err.strerror or err}") from None
    try:
        copy_assets(staging / "assets")
        # Pages are made where they will live (their relative links must hold there), then moved together.
        if kind is FolderKind.BATCH:
            write_batch(folder, jobs if jobs is not None else job_states(folder), staging, target)
        else:
            write_text(staging / "index.html", run_page(folder, target, staging, target / "assets"))
        swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "index.html"


def write_batch(out: Path, jobs: list[JobState], staging: Path, target: Path) -> None:
    """The batch page and a page per job that has a run, under ``jobs/<id>/`` (:func:`job_dir` refuses an id that
    is not a plain folder name, so no page is written outside)."""
    job_pages = {}
    for job in jobs:
        folder = job_dir(out, job)
        if has_run(folder):
            page_dir, write_dir = target / "jobs" / job.id, staging / "jobs" / job.id
            write_dir.mkdir(parents=True)
            write_text(write_dir / "index.html", run_page(folder, page_dir, write_dir, target / "assets"))
            job_pages[job.id] = page_dir / "index.html"
    write_text(staging / "index.html", batch_page(out, jobs, job_pages, target, target / "assets"))


def copy_assets(assets: Path) -> None:
    assets.mkdir(parents=True)
    package = resources.files("dreamlift.report") / "assets"
    for name in ASSET_FILES:
        (assets / name).write_bytes((package / name).read_bytes())


def swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` (the old report is renamed away first, then deleted). Two reports of one
    folder written at once (a batch's own and a ``text3d report`` of it) race here without harm: whichever is
    renamed into place last stays, and the other is dropped whole."""
    old = target.with_name(f".{target.name}.old.{staging.name.rsplit('.', 1)[-1]}")
    try:
        target.rename(old)
    except FileNotFoundError:  # no report yet, or another writer has just renamed it away
        pass
    try:
        staging.rename(target)
    except OSError as err:  # another writer's report went in between: it is as new as this one
        if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    shutil.rmtree(old, ignore_errors=True)
