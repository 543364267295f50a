"""The page of a batch: totals, a filter by state and a search by prompt, and a card per job (its turntable or
first clip, prompt, state with the error's first line, attempts, seconds) linking to the job's own page."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dreamlift.batch.status import JobState, job_dir
from dreamlift.report.folders import FolderKind, folder_kind
from dreamlift.report.html import escape, page, relative

STATE_ORDER = ("done", "running", "pending", "failed", "out_of_memory", "lost", "preempted", "refused")
"""The order of the state filters (any other state follows)."""


def batch_page(out: Path, jobs: list[JobState], job_pages: dict[str, Path], page_dir: Path, assets: Path) -> str:
    """The HTML of the batch folder ``out``'s page (written in ``page_dir``); ``job_pages`` maps the ids of the
    jobs that have a page to it."""
    states = Counter(job.state for job in jobs)
    ordered = sorted(states, key=lambda s: (STATE_ORDER.index(s) if s in STATE_ORDER else len(STATE_ORDER), s))
    totals = ", ".join(f"{states[state]} {state}" for state in ordered)
    filters = "".join(
        f'<label><input type="checkbox" checked data-state-filter="{escape(state)}"> '
        f'<span class="state state-{escape(state)}">{escape(state)}</span> {states[state]}</label>'
        for state in ordered
    )
    cards = "".join(job_card(out, job, job_pages.get(job.id), page_dir) for job in jobs)
    body = (
        f"<h1>Batch {escape(out.resolve().name)}</h1>"
        f'<div class="subtitle">{escape(out.resolve())}</div>'
        f'<div class="totals">{len(jobs)} jobs: {escape(totals or "none")}</div>'
        f'<div class="controls">{filters}'
        '<input id="search" type="search" placeholder="search prompts" aria-label="search prompts">'
        '<span><span id="shown"></span> shown</span></div>'
        f'<div class="grid">{cards}</div>'
    )
    asset_path = relative(assets, page_dir)
    return page(f"Batch {out.resolve().name}", body, asset_path, [f"{asset_path}/batch.js"])


def job_card(out: Path, job: JobState, job_page: Path | None, page_dir: Path) -> str:
    """One job's card; its thumbnail and prompt link to its page when it has one."""
    folder = job_dir(out, job)
    thumbnail = job_thumbnail(folder, page_dir)
    seconds = f" · {job.seconds:.0f} s" if job.seconds is not None else ""
    prompt = escape(job.prompt)
    if job_page is not None:
        link = escape(relative(job_page, page_dir))
        thumbnail = f'<a href="{link}">{thumbnail}</a>'
        prompt = f'<a href="{link}">{prompt}</a>'
    error = f'<div class="error">{escape(job.error)}</div>' if job.error else ""
    return (
        f'<div class="job" data-state="{escape(job.state)}" data-prompt="{escape(job.prompt.lower())}" '
        f'data-id="{escape(job.id)}">{thumbnail}<div class="prompt">{prompt}</div>'
        f'<div class="meta"><span class="state state-{escape(job.state)}">{escape(job.state)}</span> '
        f"line {job.line} · {job.attempts} attempt{'s' if job.attempts != 1 else ''}{seconds}</div>{error}</div>"
    )


def job_thumbnail(folder: Path, page_dir: Path) -> str:
    """The job's turntable (plays on hover; the refine stage's when there is one), a video job's first GIF, or an
    empty box."""
    for turntable in (folder / "refine" / "turntable.mp4", folder / "turntable.mp4"):
        if turntable.is_file():
            src = escape(relative(turntable, page_dir))
            return f'<video class="thumb" src="{src}" muted loop playsinline preload="metadata"></video>'
    gifs = sorted(folder.glob("*.gif"))
    if gifs:
        return f'<img class="thumb" src="{escape(relative(gifs[0], page_dir))}" alt="" loading="lazy">'
    return '<div class="thumb"></div>'


def has_run(folder: Path) -> bool:
    """Whether a job's folder holds a run to give a page (a text3d run, even unfinished, or a video output)."""
    return folder.is_dir() and folder_kind(folder) in (FolderKind.TEXT3D, FolderKind.TEXT2VIDEO)
