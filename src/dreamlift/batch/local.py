"""The local backend: worker processes on this machine, one per visible GPU (or one CPU worker).

Each worker is a spawned process pinned to its GPU with ``CUDA_VISIBLE_DEVICES`` that keeps one
:class:`JobRunner` (and so its loaded models) for all its jobs. A job that raises is retried inside its worker;
a worker that dies (killed, out of host memory, a crash in native code) loses only its current job, which goes
back in the queue for a new worker and resumes from its checkpoint. Workers die with their batch: each watches
the batch process and ends itself within :data:`PARENT_POLL_S` of its death (kill -9 included), so a killed
batch leaves no worker behind to run its jobs beside the rerun's.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from dreamlift.batch.jobs import JobRunner
from dreamlift.batch.manifest import BatchJob
from dreamlift.batch.status import append_status, failures, history

_runner: JobRunner | None = None
"""The worker process's runner (set by :func:`_start_worker`)."""
PARENT_POLL_S = 0.5
"""Seconds between a worker's looks at whether its batch process is still its parent."""


def default_workers() -> int:
    """One worker per visible GPU, else one."""
    import torch

    return max(1, torch.cuda.device_count())


def _exit_with(parent: int) -> None:
    """End this worker process at once when ``parent`` (the batch process) is no longer its parent: the batch
    was killed, and the job lock this worker holds must go with it (a rerun's worker waits for it)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def start_worker(parent: int, gpu: int | None, workers: int, backend: str = "local") -> JobRunner:
    """Make this process one of ``workers`` worker processes of the process ``parent``: it ends with ``parent``,
    sees only GPU ``gpu`` (None: no GPU was handed out), and takes its share of the cores. Returns its runner."""
    threading.Thread(target=_exit_with, args=(parent,), name="exit-with-batch", daemon=True).start()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))  # workers share the cores, never oversubscribe
    return JobRunner(backend)


def _start_worker(parent: int, gpu_slots, gpus: int, workers: int) -> None:
    global _runner
    _runner = start_worker(parent, gpu_slots.get() if gpus else None, workers)


def _run_in_worker(job: BatchJob, out: Path, retries: int) -> dict:
    return _runner.run(job, out, retries)


def run_local(jobs: list[BatchJob], out: Path, retries: int, workers: int, on_finished: Callable[[dict], None]) -> None:
    """Run ``jobs`` on ``workers`` processes; ``on_finished(record)`` is called with each job's last record."""
    import torch

    gpus = torch.cuda.device_count()
    queue = list(jobs)
    context = multiprocessing.get_context("spawn")
    while queue:
        slots = context.Queue()
        for index in range(workers):
            slots.put(index % gpus if gpus else index)
        lost: list[BatchJob] = []
        finished_any = False
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(), slots, gpus, workers)
        ) as pool:
            pending = {pool.submit(_run_in_worker, job, out, retries): job for job in queue}
            queue = []
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = pending.pop(future)
                    try:
                        on_finished(future.result())
                        finished_any = True
                    except BrokenProcessPool:
                        lost.append(job)
        for job in lost:  # its worker died: the job goes round again (resuming) while it has retries left
            record = append_status(out, job, "lost", backend="local", error="the worker process died")
            past = history(out, job)
            if failures(past) <= retries and (past["running"] or finished_any):  # never started: only if workers work
                queue.append(job)
            else:
                on_finished(record)
