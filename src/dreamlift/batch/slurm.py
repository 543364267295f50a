"""The Slurm backend, through submitit: one job array, each task one GPU and one chunk of jobs.

A task runs its jobs one after another with a :class:`JobRunner` (so a chunk of video jobs loads the prior once).
When Slurm preempts a task or its time runs out, Slurm signals it (USR2, ``signal_delay_s`` before the end);
submitit then calls :meth:`SlurmTask.checkpoint`, which records the preemption and requeues the same task. The
requeued task skips the jobs already done and resumes the interrupted text3d job from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dreamlift.batch.jobs import JobRunner
from dreamlift.batch.manifest import BatchJob
from dreamlift.batch.status import append_status, is_done
from dreamlift.errors import UsageError


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
        "name": "dreamlift-batch",
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
    try:
        tasks = executor.map_array(SlurmTask(out, retries), chunks)
    except Exception as err:  # sbatch missing or refusing the request
        raise UsageError(f"could not submit to Slurm: {str(err).strip().splitlines()[0]}") from None
    print(f"batch: submitted Slurm array {tasks[0].job_id.split('_')[0]} ({len(tasks)} tasks)")
    remaining = dict(zip(tasks, chunks))
    while remaining:
        for task in [t for t in remaining if t.done()]:
            chunk = remaining.pop(task)
            try:
                for record in task.result():
                    on_finished(record)
            except Exception as err:  # the task itself died (node failure, cancelled, out of memory)
                lines = str(err).strip().splitlines()
                first = lines[-1] if lines else type(err).__name__  # submitit ends its message with the error
                for job in chunk:
                    if not is_done(out, job):
                        on_finished(append_status(out, job, "failed", backend="slurm", error=f"task {task.job_id}: {first}"))
        time.sleep(1.0)
