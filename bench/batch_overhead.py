"""Batch throughput and per-job overhead of each backend against running the same jobs one after another.

    python bench/batch_overhead.py [--jobs 6] [--steps 20] [--backends local slurm ray]

N tiny text3d jobs (embedded prior, a few steps, no turntable) are run (1) as N separate ``text3d`` commands one
after another, as a user would without the batch command, then (2) as one ``text3d batch`` per backend into a
fresh folder. Per backend it prints the wall time, the time the jobs themselves took (their ``seconds`` in
``status.jsonl``, model loading included), how many ran at once, and the overhead per job:
(wall − job time / jobs at once) / N.
The Slurm row needs ``sbatch`` (see ../shared/slurm-localhost.sh); the Ray row needs ray.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dreamlift.batch.status import read_status

MAIN = "import sys; from dreamlift.cli import text3d_main; sys.exit(text3d_main(sys.argv[1:]))"
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple")
SHAPES = ("cube", "sphere", "cone", "cylinder", "torus")


def settings(steps: int) -> list[str]:
    return [
        f"train.steps={steps}",
        "train.validate_every=0",
        "train.checkpoint_every=10",
        "export.resolution=48",
        "export.turntable_frames=0",
        "device=cpu",
    ]


def text3d(args: list[str]) -> float:
    start = time.time()
    subprocess.run(
        [sys.executable, "-c", MAIN, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.time() - start


def concurrency(records: list[dict]) -> int:
    """Most jobs running at the same moment, from the done records' end times and durations."""
    events = sorted([(r["time"] - r["seconds"], 1) for r in records] + [(r["time"], -1) for r in records])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--backends", nargs="+", default=["local", "slurm", "ray"], choices=["local", "slurm", "ray"])
    args = parser.parse_args()
    prompts = [f"a {COLOURS[i % 6]} {SHAPES[i % 5]}" for i in range(args.jobs)]
    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    manifest = work / "manifest.txt"
    manifest.write_text("\n".join(prompts) + "\n")

    rows = []
    one_by_one = sum(
        text3d([prompt, "--out", str(work / f"single-{i}"), *settings(args.steps)]) for i, prompt in enumerate(prompts)
    )
    rows.append(("one text3d after another", one_by_one, None, 1))
    for backend in args.backends:
        if backend == "slurm" and shutil.which("sbatch") is None:
            print("slurm: skipped (no sbatch here)")
            continue
        out = work / backend
        extra = ["--gpus-per-task", "0", "--cpus-per-task", "1"] if backend == "slurm" else []
        wall = text3d(["batch", str(manifest), "--out", str(out), "--backend", backend, *extra, *settings(args.steps)])
        records = [r for r in read_status(out) if r["outcome"] == "done"]
        rows.append(
            (f"text3d batch --backend {backend}", wall, sum(r["seconds"] for r in records), concurrency(records))
        )

    print(f"\n{args.jobs} text3d jobs of {args.steps} steps on the embedded prior (CPU)")
    print(f"{'how':<32}{'wall s':>9}{'jobs s':>9}{'at once':>9}{'overhead s/job':>16}{'speed-up':>10}")
    for name, wall, job_seconds, at_once in rows:
        if job_seconds is None:
            jobs_text, overhead_text = "-", "-"
        else:
            jobs_text, overhead_text = f"{job_seconds:.1f}", f"{(wall - job_seconds / at_once) / args.jobs:.2f}"
        print(f"{name:<32}{wall:>9.1f}{jobs_text:>9}{at_once:>9}{overhead_text:>16}{one_by_one / wall:>10.2f}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
