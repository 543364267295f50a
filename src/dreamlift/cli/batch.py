"""``text3d batch`` / ``text2video batch``: a manifest's jobs on a backend, resumable, with a summary.

Finished jobs (those with a completion marker) are skipped, so re-running the same command after a failure,
a preemption or Ctrl-C does only the work that is left. ``--status`` prints the summary without running. Both
write (or refresh) the batch's HTML report, ``OUT/report/index.html``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from dreamlift.cli.common import OneLineParser
from dreamlift.errors import UsageError

if TYPE_CHECKING:
    from dreamlift.batch.manifest import BatchJob

BACKENDS = ("local", "slurm", "ray")

BATCH_INTERRUPTED = "finished jobs are kept; run the same command to do the rest"
"""What an interrupted batch keeps."""


def batch_parser(kind: str) -> OneLineParser:
    parser = OneLineParser(
        prog=f"{kind} batch",
        description=f"Run {kind} over a manifest (one prompt a line, or JSONL with per-job settings); resumable.",
    )
    parser.add_argument("manifest", type=Path, help='text file of prompts, or .jsonl of {"prompt": …, settings}')
    parser.add_argument("overrides", nargs="*", help="dotted config overrides for every job, e.g. train.steps=400")
    parser.add_argument("--out", type=Path, required=True, help="batch folder: OUT/<job id>/ and OUT/status.jsonl")
    parser.add_argument("--config", default=None, help="preset or YAML file for every job (a line's 'config' wins)")
    parser.add_argument("--backend", choices=BACKENDS, default="local")
    parser.add_argument("--retries", type=int, default=2, help="attempts after the first for a failing job")
    parser.add_argument("--workers", type=int, default=0, help="local/ray workers (default: one per GPU, or one)")
    parser.add_argument("--status", action="store_true", help="print the summary table and exit")
    slurm = parser.add_argument_group("slurm")
    slurm.add_argument("--partition", default="")
    slurm.add_argument("--account", default="")
    slurm.add_argument("--time-min", type=int, default=240, help="time limit of a task in minutes")
    slurm.add_argument("--gpus-per-task", type=int, default=1)
    slurm.add_argument("--cpus-per-task", type=int, default=4)
    slurm.add_argument("--chunk", type=int, default=1 if kind == "text3d" else 4, help="jobs per array task")
    parser.add_argument("--ray-address", default="", help="Ray cluster to join (default: start a local one)")
    return parser


def run_batch_command(kind: str) -> Callable[[list[str]], int]:
    """The ``KIND batch`` command: a function of its arguments."""
    return partial(run_batch, kind)


def run_batch(kind: str, argv: list[str]) -> int:
    """Parse the batch command line, run what is left, print the summary; 0 when every job is done."""
    args = batch_parser(kind).parse_intermixed_args(argv)
    from dreamlift.batch.commands import batch_command
    from dreamlift.batch.manifest import parse_manifest
    from dreamlift.batch.status import is_done, job_states, summary_table
    from dreamlift.config import load_config
    from dreamlift.locks import claimed_folder

    command = batch_command(kind)
    if (
        min(args.retries, args.workers, args.gpus_per_task) < 0
        or min(args.time_min, args.chunk, args.cpus_per_task) <= 0
    ):
        raise UsageError(
            "--retries, --workers and --gpus-per-task must be ≥ 0; --time-min, --chunk and --cpus-per-task > 0"
        )
    preset = args.config or command.default_preset
    # Batch-wide settings fail once, here.
    load_config(command.config_class, preset, args.overrides, {"prompt": "check"}, preset_dir=command.preset_dir)
    jobs, errors = parse_manifest(kind, args.manifest, preset, args.overrides)
    for error in errors:
        print(f"{kind} batch: {error}", file=sys.stderr)
    if not jobs:
        raise UsageError(f"no runnable jobs in {args.manifest}")

    def exit_code() -> int:
        return 0 if all(is_done(args.out, job) for job in jobs) and not errors else 1

    def report() -> None:
        from dreamlift.report import write_report

        index = write_report(args.out, job_states(args.out, jobs))
        print(f"{kind} batch: report {index.resolve().as_uri()}", file=sys.stderr)

    if args.status:
        print(summary_table(args.out, jobs))
        if (args.out / "status.jsonl").is_file():
            report()
        return exit_code()
    with claimed_folder(args.out):  # one batch at a time writes a batch folder
        run_jobs(kind, args, [job for job in jobs if not is_done(args.out, job)], len(jobs))
        print(summary_table(args.out, jobs))
        report()
    return exit_code()


def run_jobs(kind: str, args: argparse.Namespace, todo: list[BatchJob], total: int) -> None:
    """The jobs left to do (``todo`` of ``total``) on the backend the command line names, with a progress bar."""
    from tqdm import tqdm

    from dreamlift.batch.slurm import SlurmOptions

    done = total - len(todo)
    print(f"{kind} batch: {total} jobs, {done} already done, {len(todo)} to run on {args.backend}", file=sys.stderr)
    progress = tqdm(total=total, initial=done, desc=f"{kind} batch", unit="job", dynamic_ncols=True)

    def on_finished(record: dict) -> None:
        progress.update(1)
        if record["outcome"] not in ("done", "skipped"):
            progress.write(
                f"{kind} batch: job {record['id']} (line {record['line']}) {record['outcome']}: "
                f"{record.get('error', '')}"
            )

    try:
        if todo and args.backend == "local":
            from dreamlift.batch.local import default_workers, run_local

            run_local(todo, args.out, args.retries, args.workers or default_workers(), on_finished)
        elif todo and args.backend == "slurm":
            from dreamlift.batch.slurm import run_slurm

            options = SlurmOptions(
                args.partition, args.account, args.time_min, args.gpus_per_task, args.cpus_per_task, args.chunk
            )
            run_slurm(todo, args.out, args.retries, options, on_finished)
        elif todo:
            from dreamlift.batch.ray_backend import run_ray

            run_ray(todo, args.out, args.retries, args.workers, args.ray_address, on_finished)
    finally:
        progress.close()
