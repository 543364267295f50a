"""One writer per folder: a run folder, a batch folder or a batch job's folder is written by one process at a time.

The writer holds an OS file lock (``flock``) on ``FOLDER/.writer.lock`` for as long as it writes. The kernel
releases it when the process ends, however it ends (kill -9 included), so a stale lock of a dead process never
blocks anyone; the file itself stays, holding the last writer's pid, host and command for the message a second
writer gets. A second writer is refused in one line (:class:`FolderInUse`), or, with ``wait``, waits its turn
(a batch worker whose job a dying worker still holds). ``flock`` is POSIX: Linux and macOS, and NFS v4.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from dreamlift.errors import UsageError, first_line
from dreamlift.io import open_in_place

LOCK_FILE = ".writer.lock"
"""The lock file's name in the folder it guards."""


class FolderInUse(UsageError):
    """Another living process writes the folder."""


@contextlib.contextmanager
def writer_lock(folder: Path, wait: bool = False) -> Iterator[None]:
    """Hold the writer lock of ``folder`` (which must exist) while the block runs; a lock that another living
    process holds is a :class:`FolderInUse` error, or, with ``wait``, is waited for."""
    fd = open_in_place(Path(folder) / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise FolderInUse(
                f"{folder} is being written by {holder}; wait for it to end or choose another folder"
            ) from None
        os.ftruncate(fd, 0)
        command = " ".join(os.path.basename(word) if i == 0 else word for i, word in enumerate(sys.argv))[:120]
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} ({command})\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def claimed_folder(folder: Path, wait: bool = False) -> Iterator[Path]:
    """Make ``folder`` (with its parents) if it does not exist and hold its writer lock while the block runs.

    If the block raises and the folder was made here and holds nothing but its lock file, the folder (and the
    parents made with it) is removed again: a refused or failed command leaves no empty run folder behind. An
    unwritable place is a :class:`UsageError`.
    """
    folder = Path(folder)
    made = [place for place in (folder, *folder.parents) if not place.exists()]  # the innermost first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot write to output folder {folder}: {err.strerror or first_line(err)}") from None
    try:
        with writer_lock(folder, wait):
            yield folder
    except BaseException:
        if made and {p.name for p in folder.iterdir()} <= {LOCK_FILE}:
            (folder / LOCK_FILE).unlink(missing_ok=True)
            for place in made:
                with contextlib.suppress(OSError):  # a parent that something else has filled meanwhile stays
                    place.rmdir()
        raise
