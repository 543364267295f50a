"""The page of one run: a text3d run (each stage: its mesh in the viewer, turntable, training curves, validation
strips and metrics) or a text2video output (each clip playing, its GIF and frames, the settings)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dreamlift.config import read_preset
from dreamlift.errors import UsageError
from dreamlift.pipelines.text3d import REFERENCE_FILE, read_run
from dreamlift.report.folders import FolderKind, folder_kind, read_metrics
from dreamlift.report.html import VIEWER_SCRIPT, escape, glb_script, image, page, relative, table, video, viewer
from dreamlift.report.plots import loss_plot, schedule_plot

if TYPE_CHECKING:
    from dreamlift.text3d.stages import Stage


def run_page(run: Path, page_dir: Path, write_dir: Path, assets: Path) -> str:
    """The HTML page of the run folder ``run``, whose links hold from ``page_dir`` (where it will live) and whose
    GLB scripts are written into ``write_dir`` (where it is built); ``assets``: the report's assets folder."""
    kind = folder_kind(run)
    metrics = read_metrics(run)
    prompt = metrics.get("prompt") or run_prompt(run) or "image-to-3D (no prompt)"
    if kind is FolderKind.TEXT2VIDEO:
        body, scripts = video_sections(run, page_dir, metrics), []
    else:
        body, scripts = text3d_sections(run, page_dir, write_dir)
    header = (
        f"<h1>{escape(prompt)}</h1>"
        f'<div class="subtitle">{escape(kind.value if kind else "run")} · {escape(run.resolve())}</div>'
    )
    config = run / "config.yaml"
    settings = ""
    if config.is_file():  # shown as it is, a byte that is not UTF-8 as �
        settings = f'<h2>Settings</h2><pre class="config">{escape(config.read_text(errors="replace"))}</pre>'
    asset_path = relative(assets, page_dir)
    if scripts:  # meshes to show: the viewer, the meshes, then what hands them to it
        scripts = [f"{asset_path}/{VIEWER_SCRIPT}", *scripts, f"{asset_path}/viewer.js"]
    return page(prompt, header + body + settings, asset_path, scripts)


def run_prompt(run: Path) -> str:
    """The prompt in a run's config.yaml, for a run that has no metrics yet (the folder's name if none)."""
    try:
        return str(read_preset(str(run / "config.yaml"))["prompt"])
    except (UsageError, KeyError):  # no config, not YAML, not a mapping, or no prompt
        return run.name


# --- text3d ---------------------------------------------------------------------------------------------------
def text3d_sections(run: Path, page_dir: Path, write_dir: Path) -> tuple[str, list[str]]:
    """The sections of a text3d run: its stage, then its refine stage (``refine/``) when there is one; and the GLB
    scripts the page loads."""
    stages = [(run, "stage")]
    if folder_kind(run / "refine") is FolderKind.TEXT3D:
        stages.append((run / "refine", "refine"))
    body, scripts = "", []
    for folder, key in stages:
        section, script = stage_section(folder, key, page_dir, write_dir)
        body += section
        scripts += script
    return body, scripts


def stage_section(folder: Path, key: str, page_dir: Path, write_dir: Path) -> tuple[str, list[str]]:
    """One stage's section (viewer, turntable, metrics, plots, validation strips, particles) and its scripts."""
    metrics = read_metrics(folder)
    stage, plot = stage_and_plot(folder, metrics)
    title = stage.title if stage else metrics.get("stage") or "in progress (no metrics.json yet)"
    media, scripts = [], []
    glb = folder / "mesh.glb"
    if glb.is_file():
        script = f"{key}.glb.js"
        glb_script(glb, key, write_dir / script)
        scripts.append(script)
        media.append(viewer(key, f"mesh of {title}"))
    reference = folder / REFERENCE_FILE
    if reference.is_file():  # image-to-3D: the picture it was made from, beside what it made
        media.insert(0, image(relative(reference, page_dir), "reference picture", "reference"))
    turntable = folder / "turntable.mp4"
    if turntable.is_file():
        media.append(video(relative(turntable, page_dir)))
    outputs = sorted(folder.glob("mesh.*")) + sorted(folder.glob("gaussians.ply"))
    files = [f'<a href="{escape(relative(path, page_dir))}">{path.name}</a>' for path in outputs]
    parts = [f"<h2>{escape(title[0].upper() + title[1:])}</h2>"]
    parts.append(f'<div class="row">{"".join(media)}{table(stage_facts(metrics))}</div>')
    if files:
        parts.append(f"<p>Files: {' · '.join(files)}</p>")
    if plot:
        parts.append(f'<div class="plot">{plot}</div>')
    parts.append(validation_strips(folder, page_dir))
    parts.append(particles(folder, page_dir))
    return "".join(parts), scripts


def stage_facts(metrics: dict) -> list[tuple[str, object]]:
    """The numbers a user asks of a stage: steps, seconds (per step, by phase), and the export's statistics."""
    export = metrics.get("export", {})
    facts: list[tuple[str, object]] = []
    for name, key in (("steps", "steps"), ("training seconds", "train_seconds"), ("s / step", "seconds_per_step")):
        if key in metrics:
            facts.append((name, metrics[key]))
    facts += [(f"s / step: {phase}", seconds) for phase, seconds in metrics.get("phase_seconds", {}).items()]
    for name, key in (
        ("faces", "faces"),
        ("pieces", "pieces"),
        ("genus", "genus"),
        ("watertight", "watertight"),
        ("threshold", "threshold"),
        ("textured", "textured"),
        ("export seconds", "seconds"),
    ):
        if key in export:
            value = export[key]
            facts.append((name, "– (open)" if value is None else f"{value:.4g}" if isinstance(value, float) else value))
    return facts


def stage_and_plot(folder: Path, metrics: dict) -> tuple[Stage | None, str]:
    """The stage its metrics name, read with its config, and its loss and guidance schedule, two inline SVGs; no
    stage and no plot before the first export; a config this version cannot read (from another version of
    dreamlift) gives no stage and a plot that says why in one line, so one odd run does not stop a batch's report."""
    if not metrics.get("stage"):
        return None, ""
    try:
        stage = read_run(folder, metrics).stage
    except UsageError as err:
        return None, f"<p>No training plot: {escape(err)}</p>"
    steps = metrics.get("steps", stage.steps)
    return stage, loss_plot(metrics.get("loss", []), steps) + schedule_plot(stage.guidance_config(), steps)


def validation_strips(folder: Path, page_dir: Path) -> str:
    """The newest validation strip of each kind (views; the guidance's denoised predictions; redraw-and-fit's renders
    and redrawings) and the older ones folded away."""
    parts = []
    kinds = (
        ("step", "Validation views"),
        ("guidance", "One-step denoised predictions"),
        ("redraw", "Redraw-and-fit: renders and the prior's redrawings"),
    )
    for prefix, title in kinds:
        strips = sorted((folder / "validation").glob(f"{prefix}_*.png"), reverse=True)
        if not strips:
            continue
        images = [f"<div>{escape(p.stem)}<br>{image(relative(p, page_dir), p.stem)}</div>" for p in strips]
        older = f"<details><summary>{len(strips) - 1} earlier</summary>{''.join(images[1:])}</details>"
        parts.append(f"<h3>{title}</h3>{images[0]}{older if len(strips) > 1 else ''}")
    return "".join(parts)


def particles(folder: Path, page_dir: Path) -> str:
    """Turntables and mesh files of particles 1, 2, … (``particle-i/``), when the run had several."""
    items = []
    for particle in sorted(folder.glob("particle-*")):
        turntable = particle / "turntable.mp4"
        files = [f'<a href="{escape(relative(p, page_dir))}">{p.name}</a>' for p in sorted(particle.glob("mesh.*"))]
        clip = video(relative(turntable, page_dir)) if turntable.is_file() else ""
        items.append(f"<div><h3>{escape(particle.name)}</h3>{clip}<p>{' · '.join(files)}</p></div>")
    return f'<div class="row">{"".join(items)}</div>' if items else ""


# --- text2video ----------------------------------------------------------------------------------------------
def video_sections(run: Path, page_dir: Path, metrics: dict) -> str:
    """Each clip playing, its GIF and frames, then the metrics."""
    parts = []
    for clip in sorted(run.glob("*.mp4")):
        gif = clip.with_suffix(".gif")
        frames = sorted((run / "frames" / clip.stem).glob("*.png"))
        row = video(relative(clip, page_dir))
        if gif.is_file():
            row += image(relative(gif, page_dir), f"{clip.stem} as a GIF", "gif")
        strip = "".join(image(relative(f, page_dir), f.stem, "") for f in frames)
        parts.append(f"<h2>{escape(clip.stem)}</h2><div class='row'>{row}</div>")
        if strip:
            parts.append(f'<div class="frames">{strip}</div>')
    facts = [(key.replace("_", " "), value) for key, value in metrics.items() if key != "prompt"]
    parts.append(f"<h2>Metrics</h2>{table(facts)}")
    return "".join(parts)
