"""Time and peak memory of one text3d step per guidance kind, split into render / encode / U-Net / LoRA / backward /
optimiser.

    python bench/guidance_step.py [--configs dreamfusion prolificdreamer] [--model embedded] [--device cpu]
                                  [--steps 30] [key=value ...]

Each preset runs in a fresh process (so peak memory is its own): a few warm-up steps, then ``--steps`` timed
steps of the real pipeline (its PhaseTimer, synchronised on CUDA). Prints a table per preset and the time and
peak memory of each preset relative to the first. Peak memory is the process's peak resident set on the CPU,
and the peak allocated GPU memory on CUDA.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dreamlift.config import load_config
from dreamlift.loading import load_prior_model
from dreamlift.runtime import resolve_device
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.trainer import TextTo3D
from dreamlift.timing import PhaseTimer

PHASES = ("render", "encode", "unet", "lora", "backward", "optimiser")


def measure(args) -> dict:
    """Time the steps of one preset in this process; returns seconds per phase, the total and peak memory (MiB)."""
    # Measure the shading mix of training proper, not the albedo-only warm-up at the start of a run.
    config = load_config(
        Text3DConfig,
        args.single,
        ["shading.albedo_only_steps=0", *args.overrides],
        {"prompt": args.prompt, "prior.model": args.model, "device": args.device},
    )
    device = resolve_device(config.device)
    pipeline = TextTo3D(config, load_prior_model(config.prior, device), Path(tempfile.mkdtemp()), device)
    for _ in range(args.warmup):
        pipeline.train_step()
    pipeline.timer = PhaseTimer(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        pipeline.train_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return {
        "kind": config.guidance.kind,
        "device": name,
        "resolution": config.train.resolution,
        "phases": pipeline.timer.means(),
        "total": (time.perf_counter() - start) / args.steps,
        "peak_mib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=["dreamfusion", "prolificdreamer"])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--prompt", default="a red cube")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--single", default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.single:
        print(json.dumps(measure(args)))
        return
    results = []
    for preset in args.configs:
        command = [
            sys.executable,
            __file__,
            "--single",
            preset,
            "--model",
            args.model,
            "--device",
            args.device,
            "--prompt",
            args.prompt,
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            *args.overrides,
        ]
        results.append(
            json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        )
    first = results[0]
    print(
        f'{args.steps} steps per preset on {first["device"]}, {first["resolution"]}px renders, prompt "{args.prompt}"'
    )
    print(f"{'phase (ms/step)':<16}" + "".join(f"{preset:>18}" for preset in args.configs))
    for phase in PHASES:
        print(f"{phase:<16}" + "".join(f"{1000 * r['phases'].get(phase, 0.0):>18.1f}" for r in results))
    print(f"{'total':<16}" + "".join(f"{1000 * r['total']:>18.1f}" for r in results))
    print(f"{'peak MiB':<16}" + "".join(f"{r['peak_mib']:>18.0f}" for r in results))
    print(f"{'time ratio':<16}" + "".join(f"{r['total'] / first['total']:>18.2f}" for r in results))
    print(f"{'memory ratio':<16}" + "".join(f"{r['peak_mib'] / first['peak_mib']:>18.2f}" for r in results))


if __name__ == "__main__":
    main()
