"""Starting the studio: its folder held, its workers ready to start, its server listening, its address printed."""

from __future__ import annotations

import ipaddress
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from dreamlift.batch.local import default_workers
from dreamlift.errors import UsageError
from dreamlift.locks import claimed_folder
from dreamlift.studio.server import StudioServer
from dreamlift.studio.studio import Studio


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may name any interface
        return False


def serve(
    folder: Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    workers: int = 0,
    live_view_every_s: float = 1.0,
    announce: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> None:
    """Run the studio of ``folder`` on ``host``:``port`` (0: a free port) until interrupted, with ``workers`` worker
    processes (0: as a batch would, one per GPU, else one). ``announce`` hears the address to open; bound to
    anything but loopback, it carries the token that every request needs. One studio at a time holds a folder."""
    import torch

    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    with claimed_folder(Path(folder)):
        gpus = torch.cuda.device_count()
        studio = Studio(Path(folder), workers or default_workers(), gpus, live_view_every_s=live_view_every_s)
        try:
            server = StudioServer((host, port), studio, token)
        except OSError as err:
            raise UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
        studio.start()
        shown_host = f"[{host}]" if ":" in host else host
        address = f"http://{shown_host}:{server.server_port}/" + (f"?token={token}" if token else "")
        announce(f"text3d serve: the studio of {folder} is at {address} (Ctrl-C stops it)")
        try:
            server.serve_forever(poll_interval=0.5)
        finally:
            server.server_close()
            studio.stop()
