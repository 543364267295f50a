"""The studio's worker processes: the local batch backend's workers (:func:`dreamlift.batch.local.start_worker`),
handed one job at a time so that a job can be cancelled.

Each worker is a spawned process that keeps its :class:`~dreamlift.batch.jobs.JobRunner`, and so its loaded models,
from job to job. It runs in a process group of its own (a Ctrl-C in the studio's terminal is the studio's to
handle) and ends with the studio, however the studio ends. Cancelling a job kills its worker's group, the worker
and anything it started (an encoder writing a turntable); the job keeps its last checkpoint, and the next job gets
a fresh worker.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from tqdm import tqdm

from dreamlift.batch.local import start_worker
from dreamlift.batch.manifest import BatchJob


def serve_jobs(parent: int, gpu: int | None, workers: int, out: Path, retries: int, connection: Connection) -> None:
    """A worker's life: run each job that comes over ``connection`` in the batch folder ``out`` and send back its
    last status record."""
    os.setpgrp()
    # Progress bars of one process need no lock shared between processes: tqdm's own would be a named semaphore
    # that a cancelled (killed) worker leaves for the studio to warn of as it ends.
    tqdm.set_lock(threading.RLock())
    runner = start_worker(parent, gpu, workers, backend="studio")
    while True:
        job = connection.recv()
        connection.send(runner.run(job, out, retries))


class StudioWorker:
    """One worker process and the job it runs (None while idle)."""

    def __init__(self, out: Path, gpu: int | None, workers: int, retries: int):
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(
            target=serve_jobs,
            args=(os.getpid(), gpu, workers, Path(out), retries, theirs),
            name="dreamlift-studio-worker",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self.job: BatchJob | None = None
        self.given_at = 0.0
        """When the job was handed over (seconds since the epoch)."""

    def give(self, job: BatchJob) -> None:
        """Start ``job`` (the worker must be idle)."""
        self.job, self.given_at = job, time.time()
        self.connection.send(job)

    def finished(self) -> dict | None:
        """The last status record of the job that has just ended, once (None while it runs, or when idle)."""
        if self.job is None or not self.connection.poll():
            return None
        try:
            record = self.connection.recv()
        except EOFError:  # it died (see alive)
            return None
        self.job = None
        return record

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        """End the worker and whatever it started, at once."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # gone already, or not yet in its own group
            self.process.kill()
        self.process.join()
        self.connection.close()
