"""The Slurm backend, through submitit: one job array, each task one GPU and one chunk of jobs.

A task runs its jobs one after another with a :class:`JobRunner` (so a chunk of video jobs loads the prior once).
When Slurm preempts a task or its time runs out, Slurm signals it (USR2, ``signal_delay_s`` before the end);
submitit then calls :meth:`SlurmTask.checkpoint`, which records the preemption and requeues the same task. The
requeued task skips the jobs already done and resumes the interrupted text3d job from its last checkpoint.

The array is the batch's workers: it is cancelled when the batch process stops (Ctrl-C, an error), and an array
that a killed batch left running is cancelled by the batch's rerun before it submits its own (the array's id is
kept in ``OUT/slurm/array``), so two arrays never run one batch; a job's lock (:mod:`dreamlift.locks`) keeps
them from running one job at once in the seconds Slurm takes to end the old tasks.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dreamlift.batch.jobs import JobRunner
from dreamlift.batch.manifest import BatchJob
from dreamlift.batch.status import append_status, is_done
from dreamlift.errors import UsageError, first_line
from dreamlift.io import write_text

ARRAY_FILE = "array"
"""The file in ``OUT/slurm/`` that holds the id of the array the batch submitted last."""
JOB_NAME = "dreamlift-batch"
"""The Slurm job name of a batch's arrays."""


@dataclass
class SlurmOptions:
    """Where and how the job array runs."""

    partition: str = ""
    """Slurm partition (empty: the cluster's default)."""
    account: str = ""
    """Slurm account to charge (empty: the user's default)."""
    time_min: int = 240
    """Time limit of one task in minutes; a task that reaches it is requeued and resumes."""
    gpus_per_task: int = 1
    """GPUs per task (0 for CPU-only clusters)."""
    cpus_per_task: int = 4
    chunk: int = 1
    """Jobs per task (video jobs are short: several per task spare the scheduler and the model loads)."""
    parallel: int = 256
    """Tasks of the array running at once at most."""


class SlurmTask:
    """What one array task runs: its chunk of jobs, each with retries; requeued on preemption."""

    def __init__(self, out: Path, retries: int):
        self.out, self.retries = Path(out), retries

    def __call__(self, jobs: list[BatchJob]) -> list[dict]:
        import torch

        torch.set_num_threads(int(os.environ.get("SLURM_CPUS_PER_TASK", torch.get_num_threads())))  # not oversubscribed
        runner = JobRunner("slurm")
        self._current: BatchJob | None = None
        records = []
        for job in jobs:
            self._current = job
            records.append(runner.run(job, self.out, self.retries))
        return records

    def checkpoint(self, jobs: list[BatchJob]):
        """Called by submitit when Slurm signals preemption or the time limit: requeue this same task."""
        import submitit

        current = getattr(self, "_current", None)
        if current is not None and not is_done(self.out, current):
            append_status(self.out, current, "preempted", backend="slurm", error="requeued by Slurm")
        return submitit.helpers.DelayedSubmission(SlurmTask(self.out, self.retries), jobs)


def run_slurm(
    jobs: list[BatchJob], out: Path, retries: int, options: SlurmOptions, on_finished: Callable[[dict], None]
) -> None:
    """Submit ``jobs`` as one array (``options.chunk`` jobs a task) and wait for every task to end."""
    try:
        import submitit
    except ImportError:
        raise UsageError("the slurm backend needs submitit: pip install 'dreamlift[slurm]'") from None
    # Clusters without accounting make submitit warn on every status poll; completion is read from result files.
    logging.getLogger("submitit").setLevel(logging.ERROR)
    executor = submitit.AutoExecutor(folder=Path(out) / "slurm" / "%j", cluster="slurm")
    parameters = {
        "name": JOB_NAME,
        "timeout_min": options.time_min,
        "cpus_per_task": options.cpus_per_task,
        "slurm_array_parallelism": options.parallel,
    }
    if options.gpus_per_task:
        parameters["gpus_per_node"] = options.gpus_per_task
    if options.partition:
        parameters["slurm_partition"] = options.partition
    if options.account:
        parameters["slurm_account"] = options.account
    executor.update_parameters(**parameters)
    chunks = [jobs[i : i + options.chunk] for i in range(0, len(jobs), options.chunk)]
    array_file = Path(out) / "slurm" / ARRAY_FILE
    earlier = array_file.read_text(errors="replace").strip() if array_file.is_file() else ""
    if earlier.isdigit():  # the array of an earlier batch of OUT that was killed: its tasks stop first
        _cancel(earlier)
    try:
        tasks = executor.map_array(SlurmTask(out, retries), chunks)
    except Exception as err:  # sbatch missing or refusing the request
        raise UsageError(f"could not submit to Slurm: {first_line(err)}") from None
    array_id = tasks[0].job_id.split("_")[0]
    write_text(array_file, array_id)
    print(f"batch: submitted Slurm array {array_id} ({len(tasks)} tasks)")
    try:
        _wait_for_tasks(out, dict(zip(tasks, chunks)), array_id, on_finished)
    except BaseException:  # Ctrl-C or an error here: the batch's workers stop with it
        _cancel(array_id)
        raise


def _cancel(array_id: str) -> None:
    """Cancel the tasks of the batch array ``array_id`` that Slurm still runs or holds (jobs of another name are
    left): pending ones are removed, running ones end (submitit lets a task carry on through the SIGTERM until
    Slurm's KillWait; meanwhile it holds its job's lock, and the rerun's task waits for it)."""
    subprocess.run(["scancel", f"--name={JOB_NAME}", array_id], capture_output=True)


def _wait_for_tasks(out: Path, remaining: dict, array_id: str, on_finished: Callable[[dict], None]) -> None:
    """Wait for every task of ``remaining`` (task → its chunk of jobs) to end, handing each job's last record to
    ``on_finished``."""
    gone_since: dict = {}
    while remaining:
        queued = _queued_tasks(array_id)
        for task in list(remaining):
            if queued is not None and task.job_id in queued:
                gone_since.pop(task, None)
            if task.done():
                try:
                    records = task.result()
                except Exception as err:  # the task itself died (node failure, out of memory, a bug)
                    lines = str(err).strip().splitlines()
                    records = _task_failed(
                        out, remaining[task], task.job_id, lines[-1] if lines else type(err).__name__
                    )
            elif queued is not None and task.job_id not in queued:
                # Gone from the queue: its result file follows within seconds, unless it was cancelled or killed,
                # which submitit cannot see on a cluster without accounting.
                if time.time() - gone_since.setdefault(task, time.time()) < RESULT_GRACE_S:
                    continue
                records = _task_failed(
                    out, remaining[task], task.job_id, "left the queue without a result (cancelled?)"
                )
            else:
                continue
            for record in records:
                on_finished(record)
            del remaining[task]
        time.sleep(2.0)


RESULT_GRACE_S = 30.0
"""Seconds a task may be gone from the queue before its result file must be there."""


def _queued_tasks(array_id: str) -> set[str] | None:
    """Ids (``ARRAY_TASK``) of the array's tasks Slurm still lists (pending, running, requeued), in one squeue
    call; None when squeue fails (then nothing is concluded)."""
    listed = subprocess.run(["squeue", "-h", "-r", "-j", array_id, "-o", "%i"], capture_output=True, text=True)
    if listed.returncode != 0:
        return set() if "Invalid job id" in listed.stderr else None
    return set(listed.stdout.split())


def _task_failed(out: Path, chunk: list[BatchJob], task_id: str, why: str) -> list[dict]:
    """A failure record for every job of a dead task's chunk that is not done."""
    return [
        append_status(out, job, "failed", backend="slurm", error=f"task {task_id}: {why}")
        for job in chunk
        if not is_done(out, job)
    ]
