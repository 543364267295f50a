"""The Ray backend: one actor per GPU of the cluster (or ``workers`` actors sharing its CPUs), each keeping its
models loaded.

Actors are restarted by Ray when their process dies; the job they were running goes back in the queue and
resumes from its checkpoint on the next free actor. ``address`` joins an existing cluster (``ray://…`` or
``host:port``); empty starts a local one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dreamlift.batch.jobs import JobRunner
from dreamlift.batch.manifest import BatchJob
from dreamlift.batch.status import append_status, failures, history
from dreamlift.errors import UsageError

RESTART_POLL_S = 1.0
"""Seconds to wait before giving a job back to an actor that Ray is restarting."""


class RayWorker:
    """The actor: a :class:`JobRunner` that lives as long as the actor's process, on ``threads`` CPU threads."""

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.runner = JobRunner("ray")

    def run(self, job: BatchJob, out: Path, retries: int) -> dict:
        return self.runner.run(job, out, retries)

    def pid(self) -> int:
        import os

        return os.getpid()


def run_ray(
    jobs: list[BatchJob], out: Path, retries: int, workers: int, address: str, on_finished: Callable[[dict], None]
) -> None:
    """Run ``jobs`` on Ray actors; ``workers`` = 0 takes one actor per GPU of the cluster (at least one)."""
    try:
        import ray
    except ImportError:
        raise UsageError("the ray backend needs ray: pip install 'dreamlift[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False, configure_logging=False)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    count = workers or max(1, gpus)
    cpus = 1 if gpus else max(1, int(resources.get("CPU", 1)) // count)  # CPU actors share the cluster's cores
    actor_class = ray.remote(num_gpus=1 if gpus else 0, num_cpus=cpus, max_restarts=-1)(RayWorker)
    actors = [actor_class.remote(cpus) for _ in range(count)]
    queue = list(jobs)
    running = {}  # result reference → (actor, job, the job's attempts started before this call)
    try:
        while queue or running:
            busy = {actor for actor, _, _ in running.values()}
            for actor in [a for a in actors if a not in busy]:
                if not queue:
                    break
                job = queue.pop(0)
                running[actor.run.remote(job, out, retries)] = (actor, job, history(out, job)["running"])
            done, _ = ray.wait(list(running), num_returns=1)
            _, job, started_before = running.pop(done[0])
            try:
                on_finished(ray.get(done[0]))
            except ray.exceptions.RayActorError:
                if history(out, job)["running"] == started_before:
                    # The call never reached the actor (Ray is restarting it): no fault of the job's.
                    queue.insert(0, job)
                    time.sleep(RESTART_POLL_S)
                    continue
                record = append_status(out, job, "lost", backend="ray", error="its actor died")
                if failures(history(out, job)) <= retries:
                    queue.append(job)
                else:
                    on_finished(record)
    finally:
        for actor in actors:
            ray.kill(actor)
