"""Atomic outputs: every file (text, JSON, checkpoints, PNG, GIF, MP4) is written under a temporary name in its
own folder, then renamed into place; a set of files that belong together (an export's meshes, turntable and
metrics) is built in a staging folder and moved into place when whole (:func:`staged_writes`).

A reader therefore sees either the old file or the complete new one, never a half-written one, even if the
process is killed mid-write; what a killed writer leaves behind (temporary files, staging folders) is removed by
the next writer (:func:`remove_leftovers`). A full disk or an unwritable folder is a :class:`UsageError` naming
the file. Checkpoints are read with torch's ``weights_only`` unpickler (:func:`load_torch`): tensors and plain
data only, never code. Images here are float tensors 3×H×W in [0, 1]; frames are uint8 arrays F×H×W×3.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch

from dreamlift.errors import UsageError, first_line

TEMPORARY_MARK = ".tmp"
"""What the names of :func:`atomic_path`'s temporary files hold before their suffix: ``.mesh.k3j2x9.tmp.glb``."""
STAGING_PREFIX = ".staging."
"""The name prefix of :func:`staged_writes`'s staging folders."""
NEARLY_FULL_BYTES = 1 << 20
"""Free bytes under which a failed write is blamed on a full disk (a writer such as ffmpeg reports ENOSPC as a
broken pipe)."""


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error remove it.

    The temporary name keeps the final suffix, so libraries that choose a format by extension still work. A
    full disk or a folder that cannot be written is a :class:`UsageError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMPORARY_MARK}{path.suffix}", dir=path.parent)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or first_line(err)}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT) or _nearly_full(path.parent):
            raise UsageError(f"no space left on the device to write {path}") from None
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise UsageError(f"cannot write {path}: {err.strerror}") from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


@contextlib.contextmanager
def staged_writes(folder: Path | str, last: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a staging folder inside ``folder``: what the block writes under it is moved to the same relative
    paths in ``folder`` when the block ends without error (the relative paths in ``last`` after all others, in
    that order), and removed with the staging folder otherwise.

    Each file is replaced whole (``os.replace``), so readers see old or new files; a writer killed while moving
    leaves a staging folder that :func:`remove_leftovers` removes, and rewriting the whole set repairs it.
    """
    folder = Path(folder)
    try:
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    except OSError as err:
        raise UsageError(f"cannot write in {folder}: {err.strerror or first_line(err)}") from None
    try:
        yield staging
        written = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file())
        ordered = [p for p in written if str(p) not in last] + [Path(name) for name in last if Path(name) in written]
        for relative in ordered:
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, folder / relative)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_leftovers(folder: Path | str, subfolders: tuple[str, ...] = ()) -> None:
    """Remove what killed writers left in ``folder`` and its ``subfolders``: :func:`atomic_path`'s temporary files
    and :func:`staged_writes`'s staging folders. Call it only while holding the folder's writer lock."""
    for where in [Path(folder), *(Path(folder) / name for name in subfolders)]:
        for leftover in where.glob(f".*{TEMPORARY_MARK}*"):
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
        for staging in where.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_in_place(path: Path | str, flags: int) -> int:
    """``os.open`` of a file that is written in place (appended to, or a lock) rather than replaced, refusing a
    symbolic link at ``path``: a folder from elsewhere could otherwise point one at any file of yours and have it
    written. Usable as ``open()``'s opener; a link or a file that cannot be opened is a :class:`UsageError`."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o666)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or first_line(err)}") from None


def copy_files(files: dict[str, Path], out_dir: Path | str) -> Path:
    """Copy each of ``files`` (name → path) to ``out_dir/name``, each written atomically; returns ``out_dir``."""
    out_dir = Path(out_dir)
    for name, path in files.items():
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(path, tmp)
    return out_dir


def write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json_object(path: Path | str) -> dict[str, Any]:
    """The JSON object in ``path`` (a run's metrics.json); a file that cannot be read, is not JSON or holds
    something else is a :class:`UsageError`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # ValueError: not UTF-8 or not JSON; too deeply nested
        raise UsageError(f"cannot read {path}: {first_line(err)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def write_json(path: Path | str, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2))


def append_json_line(path: Path | str, record: Any) -> None:
    """Append ``record`` as one line of JSON to ``path`` (made if missing), in one ``write`` in append mode, so that
    several processes, on several hosts, may append to the same file."""
    fd = open_in_place(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def save_torch(path: Path | str, obj: Any) -> None:
    """``torch.save`` to ``path`` atomically (serialised in memory first, so that a full disk is an OSError)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def load_torch(path: Path | str) -> Any:
    """What :func:`save_torch` wrote at ``path``, every tensor on the CPU, read with torch's ``weights_only``
    unpickler: tensors, numbers, strings and containers of them, never objects that run code when loaded. A
    file that is not such a checkpoint (cut short, foreign, malicious) is a :class:`UsageError`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"checkpoint not found: {path}") from None
    except pickle.UnpicklingError:
        raise UsageError(
            f"{path} is not a checkpoint dreamlift can read: it holds objects that would run code when loaded"
        ) from None
    except Exception:  # torch raises RuntimeError, KeyError, EOFError… for a file cut short or foreign
        raise UsageError(f"{path} is not a checkpoint dreamlift can read: it is cut short, or no checkpoint") from None


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images …×3×H×W in [0, 1] (any device) → uint8 array …×H×W×3."""
    return (images.movedim(-3, -1).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def image_grid(images: torch.Tensor, columns: int) -> torch.Tensor:
    """Images N×3×H×W in a grid of up to ``columns`` per row, the last row padded with white: 3×(R·H)×(C·W)."""
    count, channels, height, width = images.shape
    columns = min(columns, count)
    rows = -(-count // columns)
    padded = torch.cat([images, images.new_ones(rows * columns - count, channels, height, width)])
    return (
        padded.reshape(rows, columns, channels, height, width)
        .permute(2, 0, 3, 1, 4)
        .reshape(channels, rows * height, columns * width)
    )


def write_png(image: torch.Tensor | np.ndarray, path: Path | str) -> None:
    """An image (3×H×W float tensor in [0, 1], or H×W×3 uint8 array) as an 8-bit PNG, atomically."""
    pixels = to_uint8(image) if isinstance(image, torch.Tensor) else image
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, pixels, extension=".png")


def write_gif(frames: np.ndarray, path: Path | str, fps: int) -> None:
    """Looping GIF of frames F×H×W×3 uint8 at ``fps`` (GIF stores delays in hundredths of a second), atomically."""
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=round(100 / fps) * 10, loop=0)


def write_video(frames: np.ndarray, path: Path | str, fps: int) -> None:
    """H.264 mp4 (yuv420p) of frames F×H×W×3 uint8, written atomically by imageio's ffmpeg plugin (imageio-ffmpeg;
    without it imageio would pick another writer and fail obscurely, so its absence is a one-line error)."""
    with atomic_path(path) as tmp:
        try:
            iio.imwrite(
                tmp, frames, plugin="FFMPEG", fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p"
            )
        except ImportError:
            raise UsageError("writing .mp4 needs the imageio-ffmpeg package: pip install imageio-ffmpeg") from None


def slugify(prompt: str) -> str:
    """A folder name from a prompt: ``"A red cube!"`` → ``"a-red-cube"``."""
    return re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:60] or "run"


def fresh_run_dir(prompt: str, root: Path = Path("outputs")) -> Path:
    """``outputs/<slug>``, or ``outputs/<slug>-2``, ``-3``… if taken."""
    base = root / slugify(prompt)
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def latest_run_dir(prompt: str, root: Path = Path("outputs")) -> Path:
    """The most recent default run folder of a prompt (for ``--resume`` without ``--out``)."""
    base = root / slugify(prompt)
    runs = [p for p in [base, *root.glob(f"{base.name}-*")] if (p / "config.yaml").is_file()]
    if not runs:
        raise UsageError(f"no earlier run of this prompt under {root}/ to resume; pass --out RUN_DIR")
    return max(runs, key=lambda p: (p / "config.yaml").stat().st_mtime)
