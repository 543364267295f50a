"""``text3d serve``: the studio, a local web page to queue jobs, watch them form and take their files."""

from __future__ import annotations

import signal
from pathlib import Path

from dreamlift.cli.common import OneLineParser
from dreamlift.errors import UsageError

SERVE_INTERRUPTED = "queued and unfinished jobs are kept; `text3d serve` on the same folder takes them up again"
"""What a stopped studio keeps."""


def run_serve(argv: list[str]) -> int:
    parser = OneLineParser(
        prog="text3d serve",
        description="Start the studio: a web page that queues text3d and text2video jobs, shows each one forming, "
        "then its mesh, turntable, files and report. Its queue lives in --out and survives a restart.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (any but loopback needs the token it prints)"
    )
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (0: any free one)")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "studio", help="the studio's folder")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default: one per GPU, or one)")
    parser.add_argument(
        "--live-view-every", type=float, default=1.0, help="seconds between a text3d job's live renders"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535 or args.workers < 0 or not args.live_view_every >= 0:
        raise UsageError("--port must lie in 0–65535, --workers and --live-view-every must be ≥ 0")
    from dreamlift.studio.serve import serve

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped by a service manager: as by Ctrl-C
    serve(args.out, args.host, args.port, args.workers, args.live_view_every)
    return 0
