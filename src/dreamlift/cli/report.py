"""``text3d report DIR`` / ``text2video report DIR``: the offline HTML report of a run, refine, text2video or batch
folder, written to ``DIR/report/index.html``."""

from __future__ import annotations

import sys
import webbrowser
from pathlib import Path

from dreamlift.cli.common import OneLineParser

REPORT_INTERRUPTED = "the earlier report, if any, is kept"
"""What an interrupted report keeps (the new one is swapped in only when whole)."""


def run_report(command: str, argv: list[str]) -> int:
    parser = OneLineParser(
        prog=f"{command} report",
        description="Write DIR/report/index.html: the run's mesh in a 3D viewer, turntable, curves, strips and "
        "settings, or a batch's jobs at a glance; it opens offline, from the folder.",
    )
    parser.add_argument("folder", type=Path, help="a text3d run or refine folder, a text2video output, or a batch")
    parser.add_argument("--open", action="store_true", help="open the report in the default web browser")
    args = parser.parse_args(argv)
    from dreamlift.report import write_report

    index = write_report(args.folder)
    print(f"{command} report: wrote {index}", file=sys.stderr)
    if args.open:
        uri = index.resolve().as_uri()
        if not webbrowser.open(uri):  # no browser here (a server, a container): say where it is instead
            print(f"{command} report: no web browser to open; open {uri}", file=sys.stderr)
    return 0
