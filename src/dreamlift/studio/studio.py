"""The studio's engine: its queue (:mod:`.queue`), its workers (:mod:`.workers`) and what the page is told.

One thread hands queued jobs to idle workers in the order they were asked for, notices jobs that end, and keeps
a snapshot of every job (:mod:`.job_view`); each change of the snapshot wakes whoever waits for one (the page's
event streams). While jobs run it looks every :data:`POLL_S` seconds at the workers and the jobs' progress files;
while none runs it sleeps until a job is asked for.

A job's state here: ``queued`` (asked for, waiting for a worker), ``running``, ``done``, ``cancelled``, or how its
last attempt ended (``failed``, ``refused``, ``out_of_memory``, or ``lost`` when its worker died). After a
restart, every job that was queued or running and has not ended since it was last asked for is queued again,
and a text3d job resumes from its checkpoint.
"""

from __future__ import annotations

import threading
from pathlib import Path

from dreamlift.batch.manifest import BatchJob
from dreamlift.batch.status import append_status, is_done, is_number, read_status
from dreamlift.errors import UsageError
from dreamlift.studio.job_view import job_view
from dreamlift.studio.queue import JobQueue, QueuedJob
from dreamlift.studio.workers import StudioWorker

POLL_S = 0.25
"""Seconds between two looks at the running jobs."""
SUBMIT_WAIT_S = 5.0
"""Seconds a submission waits at most for the snapshot to show its job."""
ENDED = ("done", "failed", "refused", "out_of_memory", "lost", "cancelled")
"""Outcomes after which a job waits to be asked for again (it then resumes from its checkpoint)."""


class Studio:
    """The queue of the studio folder ``folder`` run by ``workers`` worker processes (see :mod:`.workers`);
    ``gpus``: how many GPUs to share out between them (0: none)."""

    def __init__(self, folder: Path, workers: int, gpus: int = 0, retries: int = 0, live_view_every_s: float = 1.0):
        self.folder = Path(folder)
        self.queue = JobQueue(self.folder, live_view_every_s)
        self.gpus, self.retries = gpus, retries
        self.workers: list[StudioWorker | None] = [None] * workers
        self._changed = threading.Condition()
        """Guards the snapshot and the jobs asked to be cancelled; notified when the snapshot changes."""
        self._cancelled: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.version = 0
        self.snapshot: list[dict] = []
        self._views: dict[str, tuple[tuple, dict]] = {}
        """Each job's view, with the state and last record time it was made for."""
        self._thread = threading.Thread(target=self._loop, name="studio-scheduler", daemon=True)

    # --- what the server calls --------------------------------------------------------------------------------
    def start(self) -> None:
        queued, records = self.queue.jobs(), read_status(self.folder)
        self._refresh(queued, records, self._states(queued, records))
        self._thread.start()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop handing out jobs and end the workers (their jobs keep their checkpoints and run again next time)."""
        self._stop.set()
        self._wake.set()
        with self._changed:  # the event streams end
            self._changed.notify_all()
        self._thread.join()
        for worker in self.workers:
            if worker is not None:
                worker.kill()

    def submit(self, form: dict) -> BatchJob:
        """Queue the job of ``form`` (:meth:`JobQueue.submit`) and return once the snapshot shows it; a bad form is
        a UsageError."""
        job = self.queue.submit(form)
        self._wake.set()
        with self._changed:
            self._changed.wait_for(lambda: any(view["id"] == job.id for view in self.snapshot), SUBMIT_WAIT_S)
        return job

    def cancel(self, job_id: str) -> None:
        """Cancel a queued or running job (a running one's worker is ended); a job that is neither is a
        UsageError."""
        with self._changed:
            states = {view["id"]: view["state"] for view in self.snapshot}
            if states.get(job_id) not in ("queued", "running"):
                raise UsageError(f"job {job_id} is not queued or running: there is nothing to cancel")
            self._cancelled.add(job_id)
        self._wake.set()

    def wait_for_change(self, version: int, timeout: float) -> tuple[int, list[dict]]:
        """The snapshot once it is newer than ``version``, or as it is after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != version or self._stop.is_set(), timeout)
            return self.version, self.snapshot

    # --- the scheduler's thread -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            queued = self.queue.jobs()
            self._cancel_asked(queued)
            self._collect_ended()
            records = read_status(self.folder)
            states = self._states(queued, records)
            for job in self._hand_out([q.job for q in queued if states[q.job.id] == "queued"]):
                states[job.id] = "running"
            self._refresh(queued, records, states)
            self._wake.wait(POLL_S if self._running() else None)

    def _running(self) -> dict[str, StudioWorker]:
        """The running jobs' ids, each with its worker."""
        return {worker.job.id: worker for worker in self.workers if worker is not None and worker.job is not None}

    def _cancel_asked(self, queued: list[QueuedJob]) -> None:
        """Cancel the jobs asked to be: record it, and end the worker of a running one."""
        with self._changed:
            asked, self._cancelled = self._cancelled, set()
        running = self._running()
        for job in [q.job for q in queued if q.job.id in asked]:
            if job.id in running:
                worker = running[job.id]
                worker.kill()
                self.workers[self.workers.index(worker)] = None
            append_status(self.folder, job, "cancelled", backend="studio")

    def _collect_ended(self) -> None:
        """Forget the jobs that ended; a worker that died with its job (killed from outside, out of host memory)
        is replaced, its job recorded as lost."""
        for index, worker in enumerate(self.workers):
            if worker is None or worker.job is None:
                continue
            if worker.finished() is None and not worker.alive:
                append_status(self.folder, worker.job, "lost", backend="studio", error="the worker process died")
                self.workers[index] = None

    def _hand_out(self, waiting: list[BatchJob]) -> list[BatchJob]:
        """Give the ``waiting`` jobs, first come first served, to the idle workers (started as needed); returns the
        jobs given."""
        given = []
        for index in range(len(self.workers)):
            if len(given) == len(waiting):
                break
            worker = self.workers[index]
            if worker is None:
                gpu = index % self.gpus if self.gpus else None
                worker = self.workers[index] = StudioWorker(self.folder, gpu, len(self.workers), self.retries)
            if worker.job is None:
                worker.give(waiting[len(given)])
                given.append(worker.job)
        return given

    def _states(self, queued: list[QueuedJob], records: list[dict]) -> dict[str, str]:
        """Each job's state: ``running`` on a worker; ``done`` (its marker); how it ended, when it ended after it was
        last asked for; else ``queued``."""
        running = self._running()
        ended: dict[str, dict] = {}
        for record in records:
            if record["outcome"] in ENDED:
                ended[record["id"]] = record
        states = {}
        for queued_job in queued:
            job, last = queued_job.job, ended.get(queued_job.job.id)
            if job.id in running:
                states[job.id] = "running"
            elif is_done(self.folder, job):
                states[job.id] = "done"
            elif last is not None and is_number(last.get("time")) and last["time"] >= queued_job.submitted:
                states[job.id] = last["outcome"]
            else:
                states[job.id] = "queued"
        return states

    def _refresh(self, queued: list[QueuedJob], records: list[dict], states: dict[str, str]) -> None:
        """Remake the snapshot (the newest job first) from the jobs' ``states`` (:meth:`_states`); wake the waiters
        when it changed. A job's view is made again while it runs, or when its state or its last record changed."""
        running = self._running()
        last_record = {record["id"]: record.get("time") for record in records}
        views = []
        for queued_job in reversed(queued):
            job, state = queued_job.job, states[queued_job.job.id]
            key = (state, last_record.get(job.id))
            cached = self._views.get(job.id)
            if state == "running" or cached is None or cached[0] != key:
                since = running[job.id].given_at if job.id in running else 0.0
                cached = self._views[job.id] = key, job_view(self.folder, job, state, records, since)
            views.append(cached[1])
        with self._changed:
            if views != self.snapshot:
                self.snapshot = views
                self.version += 1
                self._changed.notify_all()
