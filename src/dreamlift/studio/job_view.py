"""What the studio's page is told of one job: a plain, JSON-ready mapping made from the job's folder and its status
records. Every path in it is a URL of the studio's server (``/files/<id>/…``); the page writes every text in it as
text, never as HTML."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from dreamlift.batch.job_progress import read_progress
from dreamlift.batch.manifest import BatchJob
from dreamlift.batch.status import is_number, job_dir

MESH_FILES = ("mesh.glb", "mesh.obj", "mesh.mtl", "texture.png", "mesh.ply", "gaussians.ply", "turntable.mp4")
"""What a text3d stage's folder offers for download, in this order."""
STAGE_FOLDERS = ("", "refine")
"""A text3d run's stage folders, relative to its folder: stage 1, then the refine stage's."""


def file_url(folder: Path, path: Path) -> str:
    """The server's URL of ``path``, a file inside the studio's ``folder``, with its change time to keep browsers
    from showing an older copy."""
    relative = path.relative_to(folder).as_posix()
    return f"/files/{quote(relative)}?v={path.stat().st_mtime_ns}"


def downloads(folder: Path, run: Path, kind: str) -> list[dict]:
    """The job's files, each ``{"name", "url"}``: a text3d run's meshes, texture, 3DGS file and turntable (the
    refine stage's named ``refine/…``), or a clip's videos and GIFs."""
    if kind == "text3d":
        paths = [run / stage / name for stage in STAGE_FOLDERS for name in MESH_FILES]
    else:
        paths = sorted(run.glob("*.mp4")) + sorted(run.glob("*.gif"))
    return [
        {"name": path.relative_to(run).as_posix(), "url": file_url(folder, path)} for path in paths if path.is_file()
    ]


def error_line(kind: str, outcome: str, error: str) -> str:
    """A recorded error as the user reads it: a refused job's as the command line prints it (``text3d: error: …``),
    a failure's as recorded (``RuntimeError: …``)."""
    if outcome == "refused" and ": " in error:
        return f"{kind}: error: {error.split(': ', 1)[1]}"
    return error


def job_view(folder: Path, job: BatchJob, state: str, records: list[dict], since: float = 0.0) -> dict:
    """The page's view of ``job`` in the studio's ``folder``, in ``state`` (:mod:`dreamlift.studio.studio`):
    ``id``, ``kind``, ``prompt``, ``state``, ``error`` (one line, '' if none), ``seconds`` (of its finished run),
    ``progress`` (a running job's progress record written ``since`` it was handed to its worker, its picture as a
    URL), ``files`` (downloads), ``mesh`` (the GLB to show), ``turntable``, ``videos`` and ``report`` (the URL that
    writes and shows its report)."""
    run = job_dir(folder, job)
    own = [r for r in records if r["id"] == job.id and r["outcome"] not in ("skipped", "running")]
    last = own[-1] if own else {}
    error = last.get("error") if state not in ("queued", "running", "done") else None
    seconds = last.get("seconds") if state == "done" else None
    progress = read_progress(run) if state == "running" else None
    if progress is not None and progress["time"] < since:  # an earlier attempt's
        progress = None
    if progress is not None and progress["preview"] is not None:
        picture = run / progress["preview"]
        progress["preview"] = file_url(folder, picture) if picture.is_file() else None
    files = downloads(folder, run, job.kind) if run.is_dir() else []
    by_name = {item["name"]: item["url"] for item in files}
    return {
        "id": job.id,
        "kind": job.kind,
        "prompt": job.prompt,
        "line": job.line,
        "state": state,
        "error": error_line(job.kind, last.get("outcome", ""), error) if isinstance(error, str) else "",
        "seconds": round(seconds, 1) if is_number(seconds) else None,
        "progress": progress,
        "files": files,
        "mesh": by_name.get("refine/mesh.glb") or by_name.get("mesh.glb"),
        "turntable": by_name.get("refine/turntable.mp4") or by_name.get("turntable.mp4"),
        "videos": [item["url"] for item in files if item["name"].endswith(".mp4") and job.kind == "text2video"],
        "report": f"/report/{job.id}" if (run / "config.yaml").is_file() else None,
    }
