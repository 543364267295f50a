"""``text3d report DIR`` / ``text2video report DIR``: the offline HTML report of a run, refine, text2video or batch
folder, written to ``DIR/report/index.html``."""

from __future__ import annotations

import sys
from pathlib import Path

from dreamlift.cli.common import OneLineParser

REPORT_INTERRUPTED = "the earlier report, if any, is kept"
"""What an interrupted report keeps (the new one is swapped in only when whole)."""


def run_report(command: str, argv: list[str]) -> int:
    from dreamlift.report import write_report

    parser = OneLineParser(
        prog=f"{command} report",
        description="Write DIR/report/index.html: the run's mesh in a 3D viewer, turntable, curves, strips and "
        "settings, or a batch's jobs at a glance; it opens offline, from the folder.",
    )
    parser.add_argument("folder", type=Path, help="a text3d run or refine folder, a text2video output, or a batch")
    parser.add_argument("--open", action="store_true", help="print the report's file:// address")
    args = parser.parse_args(argv)
    index = write_report(args.folder)
    print(f"{command} report: wrote {index}", file=sys.stderr)
    if args.open:
        print(index.resolve().as_uri())
    return 0
