"""Time of one SDS step, split into render / encode / U-Net / backward / optimiser.

    python bench/sds_step.py [--config dreamfusion] [--model embedded] [--device cpu] [--steps 30] [key=value ...]

Runs a few warm-up steps, then times ``--steps`` steps of the real pipeline (its own PhaseTimer, synchronised on
CUDA) and prints a table, so the overhead beyond the U-Net call is visible.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from dreamlift.cli import load_model
from dreamlift.config import load_config
from dreamlift.pipelines.text_to_3d import Text3DConfig, TextTo3D, resolve_device
from dreamlift.timing import PhaseTimer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="dreamfusion")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--prompt", default="a red cube")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    # Measure the shading mix of training proper, not the albedo-only warm-up at the start of a run.
    config = load_config(
        Text3DConfig, args.config, ["shading.albedo_only_steps=0", *args.overrides], {"prompt": args.prompt, "prior.model": args.model, "device": args.device}
    )
    device = resolve_device(config.device)
    pipeline = TextTo3D(config, load_model(config, device), Path(tempfile.mkdtemp()), device)
    for _ in range(args.warmup):
        pipeline.train_step()
    pipeline.timer = PhaseTimer(device)
    shading_counts: dict[str, int] = {}
    start = time.perf_counter()
    for _ in range(args.steps):
        shading = pipeline.train_step()["shading"]
        shading_counts[shading] = shading_counts.get(shading, 0) + 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    total = (time.perf_counter() - start) / args.steps
    means = pipeline.timer.means()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"SDS step on {name}: {config.train.resolution}px renders, batch {config.train.batch_size}, "
          f"prior {args.model} ({pipeline.prior.image_size}px), shading {shading_counts}")
    print(f"{'phase':<12}{'ms/step':>10}{'share':>8}")
    for phase in ("render", "encode", "unet", "backward", "optimiser"):
        print(f"{phase:<12}{1000 * means.get(phase, 0.0):>10.1f}{means.get(phase, 0.0) / total:>8.0%}")
    other = total - sum(means.values())
    print(f"{'other':<12}{1000 * other:>10.1f}{other / total:>8.0%}")
    print(f"{'total':<12}{1000 * total:>10.1f}{1:>8.0%}")


if __name__ == "__main__":
    main()
