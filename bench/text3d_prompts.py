"""text3d over colour × shape prompts, each exported mesh graded by an independent judge; presets side by side.

    python bench/text3d_prompts.py [--prompts "a red cube" "a blue torus" ...] [--configs dreamfusion prolificdreamer]
                                   [--out bench-runs] [key=value ...]

Runs the real text3d pipeline (embedded prior) per preset and prompt, same seed, into OUT/<preset>/<prompt>/ (a
finished run is reused, an interrupted one resumed), then judges mesh.ply with dreamlift.embedded.mesh_judge: the
mesh file is rendered by its own rasterizer and classified by the judge network, which never guided the
optimisation. Prints a table per preset with the mean HSV saturation of the exported vertex colours (SDS at high
guidance over-saturates; VSD should not) and the seconds per step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

from dreamlift.cli.common import slugify
from dreamlift.config import load_config
from dreamlift.embedded import EMBEDDED_PRIOR_DIR
from dreamlift.embedded.evaluation import ALL_PROMPTS
from dreamlift.embedded.judge import ShapeJudge
from dreamlift.embedded.mesh_judge import judge_mesh
from dreamlift.embedded.shapes import caption
from dreamlift.loading import load_prior_model
from dreamlift.runtime import resolve_device
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.trainer import TextTo3D


def mark(ok: bool, value) -> str:
    return f"{'✓' if ok else '✗'} {value}"


def mean_saturation(mesh: trimesh.Trimesh) -> float:
    """Mean HSV saturation (max − min) / max of the vertex colours, in [0, 1]."""
    rgb = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(np.float64) / 255
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    return float(np.where(high > 0, (high - low) / np.maximum(high, 1e-12), 0).mean()) if len(rgb) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="*", default=[caption(c, s) for c, s in ALL_PROMPTS])
    parser.add_argument("--out", type=Path, default=Path("bench-runs"))
    parser.add_argument("--configs", nargs="*", default=["dreamfusion"], help="presets to compare on the same prompts")
    parser.add_argument("--device", default="auto")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    judge = ShapeJudge.load(EMBEDDED_PRIOR_DIR / "judge.safetensors")
    prior = None
    for preset in args.configs:
        rows = []
        for prompt in args.prompts:
            run_dir = args.out / preset / slugify(prompt)
            if not (run_dir / "metrics.json").is_file():
                config = load_config(Text3DConfig, preset, args.overrides, {"prompt": prompt, "device": args.device})
                device = resolve_device(config.device)
                prior = prior or load_prior_model(config.prior, device)
                start = time.time()
                TextTo3D(config, prior, run_dir, device).run(resume=(run_dir / "checkpoints" / "last.pt").is_file())
                print(f"{preset} {prompt}: {time.time() - start:.0f} s", file=sys.stderr)
            metrics = json.loads((run_dir / "metrics.json").read_text())
            mesh = trimesh.load(run_dir / "mesh.ply", force="mesh")
            words = prompt.split()
            rows.append((prompt, words[-2], words[-1], judge_mesh(mesh, judge), mean_saturation(mesh), metrics))
        print_table(preset, rows)


def print_table(preset: str, rows: list) -> None:
    print(f"\n{preset}")
    print(
        f"{'prompt':<22}{'colour':>9}{'shape':>10}{'hue':>8}{'satur.':>8}{'faces':>8}{'closed':>8}{'s/step':>8}{'seconds':>9}"
    )
    hits = {"colour": 0, "shape": 0, "hue": 0, "both": 0}
    for prompt, colour, shape, v, saturation, m in rows:
        ok_colour, ok_shape, ok_hue = v["colour"] == colour, v["shape"] == shape, v["hue_colour"] == colour
        hits["colour"] += ok_colour
        hits["shape"] += ok_shape
        hits["hue"] += ok_hue
        hits["both"] += ok_colour and ok_shape
        seconds = m["train_seconds"] + m["export"]["seconds"]
        print(
            f"{prompt:<22}{mark(ok_colour, v['colour']):>9}{mark(ok_shape, v['shape']):>10}"
            f"{mark(ok_hue, v['hue_colour']):>8}"
            f"{saturation:>8.2f}{m['export']['faces']:>8}{'yes' if m['export']['watertight'] else 'no':>8}"
            f"{m['seconds_per_step']:>8.2f}{seconds:>9.0f}"
        )
    n = len(rows)
    mean_saturation_all = sum(r[4] for r in rows) / n
    print(
        f"judge colour {hits['colour']}/{n}, judge shape {hits['shape']}/{n}, both {hits['both']}/{n}, "
        f"hue colour {hits['hue']}/{n}, mean saturation {mean_saturation_all:.2f}"
    )


if __name__ == "__main__":
    main()
