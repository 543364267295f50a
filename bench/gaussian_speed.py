"""End-to-end time and peak memory of text3d with 3D Gaussians (dreamgaussian) against the NeRF default, side by side.

    python bench/gaussian_speed.py [--prompt "a red cube"] [--configs dreamfusion dreamgaussian] [--repeats 1]
                                   [--out bench-runs/gaussian-speed] [key=value ...]

Each preset runs the real ``text3d`` command (embedded prior, defaults, export and turntable included) in a fresh
process, ``--repeats`` times, one after another (never two at once: on 2 cores the timings would be wrong). It
prints per preset the median wall time, the training seconds per step and the export seconds (from
metrics.json), the process's peak resident memory, and the ratio of each to the first preset's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

MAIN = "import sys; from dreamlift.cli import text3d_main; sys.exit(text3d_main(sys.argv[1:]))"


def run_once(prompt: str, preset: str, out: Path, overrides: list[str]) -> dict:
    """One ``text3d`` process into a fresh ``out``: its wall seconds, peak RSS (MiB) and metrics."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", MAIN, prompt, "--config", preset, "--out", str(out), *overrides]
    start = time.time()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)  # ru_maxrss: KiB on Linux
    wall = time.time() - start
    if status != 0:
        raise SystemExit(f"{preset}: text3d failed (status {status}); run it by hand to see why")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"wall": wall, "rss_mib": usage.ru_maxrss / 1024, "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default="a red cube")
    parser.add_argument("--configs", nargs="*", default=["dreamfusion", "dreamgaussian"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/gaussian-speed"))
    parser.add_argument("overrides", nargs="*", help="dotted config overrides of every run")
    args = parser.parse_args()
    rows = []
    for preset in args.configs:
        runs = [run_once(args.prompt, preset, args.out / preset, args.overrides) for _ in range(args.repeats)]
        last = runs[-1]["metrics"]
        rows.append(
            {
                "preset": preset,
                "wall": statistics.median(r["wall"] for r in runs),
                "s_step": last["seconds_per_step"],
                "steps": last["steps"],
                "export": last["export"]["seconds"],
                "rss": max(r["rss_mib"] for r in runs),
                "faces": last["export"]["faces"],
            }
        )
    first = rows[0]
    print(f'\ntext3d "{args.prompt}" end to end, {args.repeats} run(s) each, medians  {" ".join(args.overrides)}')
    print(f"{'preset':<16}{'wall s':>8}{'×':>7}{'steps':>7}{'s/step':>8}{'export s':>10}{'peak RSS MiB':>14}{'×':>7}")
    for row in rows:
        print(
            f"{row['preset']:<16}{row['wall']:>8.0f}{row['wall'] / first['wall']:>7.2f}{row['steps']:>7}"
            f"{row['s_step']:>8.3f}{row['export']:>10.1f}{row['rss']:>14.0f}{row['rss'] / first['rss']:>7.2f}"
        )


if __name__ == "__main__":
    main()
