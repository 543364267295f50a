"""Batch manifests: which jobs to run, each with its fully resolved config and a stable id.

A manifest is a text file, one prompt a line, or JSONL: one object a line with ``prompt`` and optional per-job
settings — ``config`` (a preset or YAML path), ``steps`` and ``seed`` (the command's flags of the same name),
``image`` (text3d's image-to-3D picture; the prompt is then optional), and any dotted config key
(``"train.resolution": 32``). Blank lines and lines starting with ``#`` are skipped. A line
that cannot become a job is reported with its line number and the rest of the batch still runs.

A manifest is untrusted input (it may come from elsewhere): a line's ``config`` is a shipped preset's name or a
YAML file inside the manifest's folder (a relative path from it, symlinks resolved), and so is every ``base`` that
file names, and a line's ``image``; it cannot read, or echo a key of, any other file on the machine. The
batch-wide ``--config`` of the command line is trusted (any path).

A job's id is a hash of its command and its resolved config (prompt and seed included, the device left out), so
the same manifest line always maps to the same output folder ``OUT/<id>/`` and a re-run finds finished work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamlift.batch.commands import batch_command
from dreamlift.config import is_inside, load_config, names_a_file, preset_names, to_dict
from dreamlift.errors import UsageError
from dreamlift.text3d.reference import ReferenceConfig, read_picture


@dataclass(frozen=True)
class BatchJob:
    """One job of a batch: the command (``kind``), its resolved config as plain data, and where it came from."""

    kind: str
    id: str
    line: int
    """Line of the manifest that asked for it (1-based)."""
    config: dict[str, Any]

    @property
    def prompt(self) -> str:
        return self.config["prompt"]


@dataclass(frozen=True)
class ManifestError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"manifest line {self.line}: {self.message}"


def job_id(kind: str, config: dict[str, Any]) -> str:
    """16 hex digits of a hash of the command and the resolved config (without ``device``)."""
    identity = {"kind": kind, "config": {k: v for k, v in config.items() if k != "device"}}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def read_manifest_lines(path: Path) -> list[tuple[int, Any]]:
    """(line number, entry) of every non-blank, non-comment line: a prompt string, or a JSON object's mapping.

    A line that is not valid JSON (in a .jsonl file, or starting with ``{``) gives a ``ManifestError`` entry.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"manifest not found: {path}")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"manifest {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise UsageError(f"cannot read manifest {path}: {err.strerror or err}") from None
    jsonl = path.suffix.lower() == ".jsonl"
    entries: list[tuple[int, Any]] = []
    for number, raw in enumerate(content.splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if jsonl or text.startswith("{"):
            try:
                entry = json.loads(text)
            except json.JSONDecodeError as err:
                entries.append((number, ManifestError(number, f"not valid JSON ({err.msg})")))
                continue
            if not isinstance(entry, dict):
                entries.append((number, ManifestError(number, "a JSONL line must be an object with a 'prompt'")))
                continue
            entries.append((number, entry))
        else:
            entries.append((number, text))
    return entries


def line_preset(config: Any, folder: Path, preset_dir: Path) -> str:
    """A manifest line's ``config``: the name of a preset shipped in ``preset_dir`` as it is, or the real path of a
    YAML file inside the manifest's ``folder`` (relative to it); anything else — an absolute path, a '..' or a
    symlink leading out of the folder, a name that is no preset — is a UsageError that echoes only the value
    itself."""
    if isinstance(config, str) and config.strip():
        if not names_a_file(config) and config in preset_names(preset_dir):
            return config
        if names_a_file(config) and not Path(config).is_absolute() and is_inside(folder / config, folder):
            return str((folder / config).resolve())
    known = ", ".join(preset_names(preset_dir))
    raise UsageError(f"config {config!r} must be a preset name ({known}) or a YAML file in the manifest's folder")


def line_picture(image: Any, folder: Path) -> str:
    """A manifest line's ``image`` (image-to-3D): the real path of a picture file inside the manifest's ``folder``
    (relative to it) that dreamlift can read; anything else is a UsageError that echoes only the value itself."""
    if (
        not isinstance(image, str)
        or not image.strip()
        or Path(image).is_absolute()
        or not is_inside(folder / image, folder)
    ):
        raise UsageError(f"image {image!r} must be a picture file in the manifest's folder (a relative path)")
    path = (folder / image).resolve()
    read_picture(path, ReferenceConfig().background_tolerance)
    return str(path)


def resolve_job(
    kind: str, number: int, entry: str | dict, preset: str | None, overrides: list[str], folder: Path
) -> BatchJob:
    """The job of one manifest entry on top of the batch's preset and overrides; a UsageError if it is bad.

    ``folder`` is the manifest's: the only place (besides the shipped presets) a line's ``config`` may read.
    """
    settings = {"prompt": entry} if isinstance(entry, str) else dict(entry)
    if "reference.image" in settings:
        raise UsageError("a line's picture is its 'image': a file in the manifest's folder")
    image = settings.pop("image", None)
    prompt = settings.pop("prompt", None if image is None else "")
    if not isinstance(prompt, str) or (image is None and not prompt.strip()):
        raise UsageError("the prompt is missing or empty")
    command = batch_command(kind)
    line_config = settings.pop("config", None)
    job_preset, within = preset or command.default_preset, None
    if line_config is not None:
        job_preset, within = line_preset(line_config, folder, command.preset_dir), folder
    values = {"prompt": prompt.strip()}
    if image is not None:
        values["reference.image"] = line_picture(image, folder)
    if "steps" in settings:
        values[command.steps_key] = settings.pop("steps")
    values.update(settings)
    config = to_dict(load_config(command.config_class, job_preset, overrides, values, within, command.preset_dir))
    return BatchJob(kind, job_id(kind, config), number, config)


def parse_manifest(
    kind: str, path: Path, preset: str | None = None, overrides: list[str] = ()
) -> tuple[list[BatchJob], list[ManifestError]]:
    """The jobs of a manifest (duplicates of an earlier line dropped) and the lines that could not become jobs.

    The batch-wide ``preset`` and ``overrides`` apply first, each line's own settings on top.
    """
    jobs: dict[str, BatchJob] = {}
    errors: list[ManifestError] = []
    folder = Path(path).parent.resolve()
    for number, entry in read_manifest_lines(path):
        if isinstance(entry, ManifestError):
            errors.append(entry)
            continue
        try:
            job = resolve_job(kind, number, entry, preset, overrides, folder)
        except UsageError as err:
            errors.append(ManifestError(number, str(err)))
            continue
        jobs.setdefault(job.id, job)
    return list(jobs.values()), errors
