"""Running one batch job where a worker is: the same code under every backend.

A :class:`JobRunner` lives as long as its worker (a local worker process, a Ray actor, a Slurm task) and keeps
the priors and motion adapters it loaded, so consecutive jobs on the same model do not load it again. A job
runs in ``OUT/<id>/`` (its progress bars and messages go to ``log.txt`` there, its progress to ``progress.json``):
text3d resumes from the run's own checkpoint when one is there (after a preemption or a crash), and the completion
marker is written after every output.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import traceback
from pathlib import Path

from dreamlift.batch.commands import batch_command
from dreamlift.batch.job_progress import ProgressFile
from dreamlift.batch.manifest import BatchJob
from dreamlift.batch.status import append_status, failures, history, is_done, job_dir, mark_done
from dreamlift.config import from_dict
from dreamlift.errors import UsageError, describe
from dreamlift.io import open_in_place
from dreamlift.loading import ModelCache
from dreamlift.locks import claimed_folder


def shrink_for_memory(kind: str, config: dict, times: int) -> dict:
    """The config (plain data) with its memory use cut ``times`` times after running out of GPU memory, as the
    command says (:attr:`BatchCommand.shrink`)."""
    config = copy.deepcopy(config)
    for _ in range(times):
        batch_command(kind).shrink(config)
    return config


def _is_out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def _outcome(err: BaseException) -> str:
    """How a job that raised ``err`` is recorded: ``out_of_memory`` (retried smaller), ``refused`` (a UsageError:
    no retry can help) or ``failed`` (retried)."""
    if _is_out_of_memory(err):
        return "out_of_memory"
    return "refused" if isinstance(err, UsageError) else "failed"


class JobRunner:
    """Runs batch jobs in one worker, keeping loaded models between jobs."""

    def __init__(self, backend: str):
        self.backend = backend
        self.models = ModelCache()

    def attempt(self, job: BatchJob, out: Path, attempt: int, memory_shrinks: int = 0) -> dict:
        """One attempt at ``job``; returns its status record: outcome done, failed, out_of_memory (retried with
        less memory), or refused (a usage error such as a missing model folder, which no retry can fix)."""
        import torch

        from dreamlift.runtime import resolve_device

        folder = job_dir(out, job)
        resumed = (folder / "checkpoints" / "last.pt").is_file()
        where = {"backend": self.backend}
        array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        if array and task:
            where["slurm_job"] = f"{array}_{task}"
        elif os.environ.get("SLURM_JOB_ID"):  # an array of one is submitted as a plain job
            where["slurm_job"] = os.environ["SLURM_JOB_ID"]
        try:
            command = batch_command(job.kind)
            config = from_dict(command.config_class, shrink_for_memory(job.kind, job.config, memory_shrinks))
            device = resolve_device(config.device)
        except UsageError as err:  # e.g. CUDA asked for on a worker without it
            return append_status(out, job, "refused", attempt=attempt, error=describe(err), **where)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where["device"] = f"{device}" + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible else "")
        start = time.time()
        append_status(out, job, "running", attempt=attempt, resumed=resumed, memory_shrinks=memory_shrinks, **where)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "log.txt", "a", opener=open_in_place) as log:
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    print(f"--- attempt {attempt} on {where['device']}, {time.ctime(start)}", flush=True)
                    command.run(config, self.models, folder, device, resumed, ProgressFile(folder))
            except Exception as err:  # a failing job is recorded (and retried), never allowed to stop the batch
                log.write(traceback.format_exc())
                outcome = _outcome(err)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                error = describe(err)
                return append_status(
                    out, job, outcome, attempt=attempt, seconds=time.time() - start, error=error, **where
                )
        seconds = time.time() - start
        mark_done(
            out, job, {"id": job.id, "prompt": job.prompt, "kind": job.kind, "attempt": attempt, "seconds": seconds}
        )
        return append_status(out, job, "done", attempt=attempt, seconds=seconds, resumed=resumed, **where)

    def run(self, job: BatchJob, out: Path, retries: int) -> dict:
        """``job`` until it is done or has failed ``retries`` + 1 times in all, counting the failures of earlier
        attempts in ``OUT/status.jsonl`` (preemptions are not failures); a finished job is skipped.

        The job's folder is this worker's alone meanwhile (its writer lock, :mod:`dreamlift.locks`): a worker of
        an earlier batch that still runs the job (killed batch, ending) is waited for, and the job is then
        skipped if that worker finished it, so no job is ever run by two workers at once, or twice."""
        out = Path(out)
        if is_done(out, job):
            return append_status(out, job, "skipped", backend=self.backend)
        with claimed_folder(job_dir(out, job), wait=True):
            if is_done(out, job):
                return append_status(out, job, "skipped", backend=self.backend)
            past = history(out, job)  # read once; this loop then counts its own attempts
            while True:
                record = self.attempt(job, out, past["running"] + 1, past["out_of_memory"])
                past.update(["running", record["outcome"]])
                if record["outcome"] in ("done", "refused") or failures(past) > retries:
                    return record
