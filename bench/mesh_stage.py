"""Stage 1 (NeRF, marching cubes) against stage 2 (DMTet mesh, textured) of the magic3d preset, per prompt.

    python bench/mesh_stage.py [--prompts "a green cone" ...] [--out bench-runs/magic3d] [key=value ...]

Runs `text3d PROMPT --config magic3d` (embedded prior, seed 0) into OUT/<prompt>/ — a finished stage is reused,
an interrupted one resumed — then grades both exports with the independent judge of bench/text3d_prompts.py
(dreamlift.embedded.mesh_judge renders the mesh file itself; mesh.ply carries the vertex colours, for stage 2
sampled from its texture). Prints colour/shape verdicts, faces, watertightness and seconds of each stage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import trimesh

from dreamlift.cli.common import slugify
from dreamlift.config import load_config
from dreamlift.embedded import EMBEDDED_PRIOR_DIR
from dreamlift.embedded.judge import ShapeJudge
from dreamlift.embedded.mesh_judge import judge_mesh
from dreamlift.loading import load_prior_model
from dreamlift.runtime import resolve_device
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.runs import refine_dir, run_stages

DEFAULT_PROMPTS = ["a green cone", "a red cube", "a blue torus"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="*", default=DEFAULT_PROMPTS)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/magic3d"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    judge = ShapeJudge.load(EMBEDDED_PRIOR_DIR / "judge.safetensors")
    prior = None
    rows = []
    for prompt in args.prompts:
        run_dir = args.out / slugify(prompt)
        config = load_config(Text3DConfig, "magic3d", args.overrides, {"prompt": prompt, "device": args.device})
        if not (refine_dir(run_dir) / "metrics.json").is_file():
            device = resolve_device(config.device)
            prior = prior or load_prior_model(config.prior, device)
            start = time.time()
            run_stages(config, prior, run_dir, device, resume=(run_dir / "checkpoints" / "last.pt").is_file())
            print(f"{prompt}: {time.time() - start:.0f} s", file=sys.stderr)
        for stage, folder in (("nerf", run_dir), ("mesh", refine_dir(run_dir))):
            metrics = json.loads((folder / "metrics.json").read_text())
            verdict = judge_mesh(trimesh.load(folder / "mesh.ply", force="mesh"), judge)
            rows.append((prompt, stage, verdict, metrics))
    print_table(rows)


def print_table(rows: list) -> None:
    print(
        f"{'prompt':<18}{'stage':>6}{'colour':>9}{'shape':>10}{'faces':>8}{'closed':>8}{'textured':>9}{'s/step':>8}{'seconds':>9}"
    )
    hits: dict[str, list[int]] = {}
    for prompt, stage, v, m in rows:
        colour, shape = prompt.split()[-2:]
        ok_colour, ok_shape = v["colour"] == colour, v["shape"] == shape
        tally = hits.setdefault(stage, [0, 0, 0])
        tally[0] += ok_colour
        tally[1] += ok_shape
        tally[2] += 1
        export = m["export"]
        print(
            f"{prompt:<18}{stage:>6}{('✓ ' if ok_colour else '✗ ') + str(v['colour']):>9}"
            f"{('✓ ' if ok_shape else '✗ ') + str(v['shape']):>10}{export['faces']:>8}"
            f"{'yes' if export['watertight'] else 'no':>8}{'yes' if export.get('textured') else 'no':>9}"
            f"{m['seconds_per_step']:>8.2f}{m['train_seconds'] + export['seconds']:>9.0f}"
        )
    for stage, (colour, shape, n) in hits.items():
        print(f"{stage}: judge colour {colour}/{n}, judge shape {shape}/{n}")


if __name__ == "__main__":
    main()
