"""The pieces every report page is made of: the page itself, tables, media elements and the 3D viewer.

Paths in a page are relative (POSIX) paths from the page's folder, so a report works wherever its folder is opened.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from dreamlift.io import write_text

VIEWER_SCRIPT = "model-viewer-umd.min.js"
"""Google's model-viewer (a classic script: pages opened from file:// may not load ES modules)."""


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def relative(target: Path, page_dir: Path) -> str:
    """``target`` as a URL path relative to ``page_dir``."""
    return Path(os.path.relpath(target, page_dir)).as_posix()


def page(title: str, body: str, assets: str, scripts: list[str] = ()) -> str:
    """A whole HTML page; ``assets`` is the relative path of the report's assets folder, ``scripts`` further
    script paths loaded (in order) after the body."""
    tags = "".join(f'<script src="{escape(src)}"></script>' for src in scripts)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="stylesheet" href="{escape(assets)}/report.css"></head>\n'
        f"<body>\n{body}\n{tags}</body></html>\n"
    )


def table(rows: list[tuple[str, object]]) -> str:
    """A two-column table of names and values (values escaped)."""
    cells = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows)
    return f'<table class="facts">{cells}</table>'


def video(src: str, css_class: str = "clip") -> str:
    """A looping, muted, playing video."""
    return f'<video class="{css_class}" src="{escape(src)}" autoplay loop muted playsinline controls></video>'


def image(src: str, alt: str, css_class: str = "strip") -> str:
    return f'<img class="{css_class}" src="{escape(src)}" alt="{escape(alt)}" loading="lazy">'


def glb_script(glb: Path, key: str, script: Path) -> None:
    """Write ``script``: a classic script that stores the GLB's bytes, base64, as ``DREAMLIFT_GLB[key]``."""
    data = base64.b64encode(glb.read_bytes()).decode("ascii")
    write_text(script, f'(window.DREAMLIFT_GLB = window.DREAMLIFT_GLB || {{}})[{json.dumps(key)}] = "{data}";\n')


def viewer(key: str, alt: str) -> str:
    """An interactive viewer (orbit, zoom) of the GLB stored as ``DREAMLIFT_GLB[key]`` (see ``viewer.js``)."""
    return (
        f'<model-viewer class="viewer" data-glb="{escape(key)}" alt="{escape(alt)}" camera-controls '
        'interaction-prompt="none" shadow-intensity="0.6" exposure="1"></model-viewer>'
    )
