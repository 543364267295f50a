"""The studio's one page: the form that asks for a job, the list of jobs, and the selected job (its progress, newest
render, mesh, turntable, downloads, report). The server writes the form (each command's presets, each with its
line); the page's script (``assets/studio.js``) fills in the jobs from the event stream, as text."""

from __future__ import annotations

from dreamlift.batch.commands import COMMANDS
from dreamlift.config import preset_names, preset_summary
from dreamlift.report.html import escape


def preset_choice(kind: str) -> str:
    """The ``config`` select of ``kind``'s jobs: its presets (its default first), each with its line."""
    command = COMMANDS[kind]
    names = preset_names(command.preset_dir)
    if command.default_preset in names:
        names.remove(command.default_preset)
        names.insert(0, command.default_preset)
    options = "".join(
        f'<option value="{escape(name)}">{escape(name)}: {escape(preset_summary(name, command.preset_dir))}</option>'
        for name in names
    )
    default = "" if command.default_preset else '<option value="">no preset: the defaults</option>'
    hidden = "" if kind == "text3d" else " hidden disabled"
    return f'<select name="config" data-kind="{escape(kind)}"{hidden}>{default}{options}</select>'


def studio_page() -> str:
    """The page's HTML (its scripts and styles come from /assets: nothing from elsewhere, nothing inline)."""
    kinds = "".join(
        f'<label><input type="radio" name="kind" value="{escape(kind)}"{" checked" if kind == "text3d" else ""}> '
        f"{escape(kind)}</label>"
        for kind in COMMANDS
    )
    presets = "".join(preset_choice(kind) for kind in COMMANDS)
    form = f"""
<form id="job-form" autocomplete="off">
  <fieldset class="kinds"><legend>Make</legend>{kinds}</fieldset>
  <label>Prompt <input name="prompt" maxlength="400" placeholder="a red cube" required></label>
  <label>Preset {presets}</label>
  <div class="row3">
    <label>Seed <input name="seed" type="number" min="0" step="1" value="0" required></label>
    <label>Steps <input name="steps" type="number" min="1" step="1" placeholder="preset's"></label>
    <label>Model <input name="model" value="embedded" required></label>
  </div>
  <label data-kind="text3d">Picture, for image-to-3D (optional)
    <input name="image" type="file" accept=".png,.jpg,.jpeg,.webp,.bmp,.gif"></label>
  <details><summary>More settings</summary>
    <textarea name="settings" rows="4" placeholder="dotted overrides, one a line: train.resolution=32"></textarea>
  </details>
  <button type="submit">Queue</button>
  <p id="form-error" class="error" role="alert"></p>
</form>"""
    detail = """
<section id="detail" hidden>
  <h2 id="detail-prompt"></h2>
  <div class="meta"><span id="detail-state" class="state"></span> <span id="detail-stage"></span></div>
  <div id="detail-progress" class="progress-line">
    <progress id="progress-bar" max="1" value="0"></progress>
    <span id="progress-step"></span> <span id="progress-eta"></span> <span id="progress-loss"></span>
  </div>
  <p id="detail-error" class="error"></p>
  <div class="row">
    <figure id="live-figure" hidden><img id="live" alt="newest render: albedo left, shaded right">
      <figcaption>newest render: albedo | shaded</figcaption></figure>
    <div id="viewer-slot"></div>
    <video id="turntable" class="clip" autoplay loop muted playsinline controls hidden></video>
  </div>
  <div class="actions"><button id="cancel" type="button" hidden>Cancel</button>
    <a id="report-link" target="_blank" hidden>report</a></div>
  <div id="downloads"></div>
</section>"""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"><title>dreamlift studio</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/report.css">'
        '<link rel="stylesheet" href="/assets/studio.css"></head>\n'
        '<body><header><h1>dreamlift studio</h1><a href="/report" target="_blank">gallery of every job</a>'
        '<span id="connection"></span></header>\n'
        f'<main class="studio"><section class="make">{form}<h2>Jobs</h2><div id="jobs"></div></section>{detail}</main>'
        '\n<script src="/assets/model-viewer-umd.min.js"></script><script src="/assets/studio.js"></script>'
        "</body></html>\n"
    )
