"""Fidelity of text3d on ground truth: each exported mesh against the primitive its prompt names, presets side by side.

    python bench/fidelity.py [key=value ...] [--quick] [--prompts "a red cube" ...] [--seeds 0 1]
                             [--configs dreamfusion magic3d] [--steps N] [--device auto] [--out bench-runs/fidelity]
                             [--tag NAME] [--image]

(overrides first: after ``--prompts`` they would be read as prompts, which is refused.)

``--image`` grades image-to-3D (``text3d --image``): each run is given the embedded shapes renderer's picture of its
prompt from the preset's reference camera (OUT/pictures/, the size, yaw and light drawn by the seed), and its
folders are tagged ``+image``.

Runs the real text3d stages (embedded prior) per preset, prompt and seed into OUT/<preset>[+TAG]/<prompt>-seed<S>/
(a finished run is reused, an interrupted one resumed), then grades what the user gets (the exported mesh.ply;
magic3d: stage 1 and the refine stage in refine/ as separate rows):

- judge: colour and shape of the mesh file rendered from eight views, by the independent judge network;
- pieces, genus of the largest piece (true: 0, torus 1), area over convex-hull area, best-fit IoU against the
  prompted primitive (size, proportions, yaw and position fitted);
- outline: the horizontal cross-sections at 25/50/75 % of the height, each square (□), round (○), other (?) or
  empty (-), and their mean rectangle fill (a square 1, a circle 0.785; embedded/cross_sections.py);
- smoothness: the surface area over the fitted primitive's (lumps and waves add area);
- fog: share of object pixels with opacity in (0.1, 0.9) in 256-px renders of the NeRF (or the Gaussians) from
  four views;
- hue distance (turns) and saturation ratio of the mean vertex colour against the palette albedo;
- cut: turntable frames in which part of the mesh lies outside the frame (its vertices projected through the
  orbit the export recorded; a run exported before that record, through the fixed orbit it had);
- seconds per step and in all (training + export).

A run passes when the judge's colour and shape are right, the genus is right, area ≤ 1.3× hull, the best-fit IoU
≥ 0.85 and every cross-section has the primitive's outline (square for a cube, round for the rest). One table per
preset with means and the pass count. ``--quick`` takes one prompt per shape (five colours).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import torch

from dreamlift.config import load_config
from dreamlift.embedded import EMBEDDED_PRIOR_DIR
from dreamlift.embedded.cross_sections import OUTLINE_MARKS, cross_sections, outline_matches
from dreamlift.embedded.evaluation import ALL_PROMPTS
from dreamlift.embedded.fidelity import (
    MIN_FIT_IOU,
    SHAPE_GENUS,
    best_fit_iou,
    colour_error,
    fog_fraction,
    hull_area_ratio,
    is_solid,
    read_exported_mesh,
    surface_over_primitive,
)
from dreamlift.embedded.judge import ShapeJudge
from dreamlift.embedded.mesh_judge import judge_mesh
from dreamlift.embedded.shapes import caption, reference_picture
from dreamlift.io import slugify, write_png
from dreamlift.loading import load_prior_model
from dreamlift.runtime import resolve_device
from dreamlift.scene.cameras import turntable_cameras
from dreamlift.scene.topology import topology
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.reference import ReferenceConfig
from dreamlift.text3d.runs import load_scenes, refine_dir, run_stages
from dreamlift.text3d.scenes import VolumeScene
from dreamlift.text3d.turntable import camera_coordinates

QUICK = ["a red cube", "a blue sphere", "a yellow cone", "a green cylinder", "a purple torus"]
"""One prompt per shape, five colours."""
FOG_VIEWS, FOG_SIZE = 4, 256


@torch.no_grad()
def scene_fog(run_dir: Path, config: Text3DConfig, device: torch.device) -> float:
    """Fog of the run's stage-1 scene (particle 0: a NeRF or Gaussians) in renders from four views around it;
    NaN for a refine-stage run (a mesh: it has no fog)."""
    scene = load_scenes(run_dir, config, device)[0][0]
    if not isinstance(scene, VolumeScene):
        return math.nan
    scene.eval()
    cameras = turntable_cameras(FOG_VIEWS, 15.0, 1.8, 47.5).to(device)
    opacity = [
        scene.render(cameras[i], FOG_SIZE, FOG_SIZE).opacity.reshape(FOG_SIZE, FOG_SIZE) for i in range(FOG_VIEWS)
    ]
    return fog_fraction(torch.stack(opacity).cpu())


def ground_truth_picture(out: Path, reference: ReferenceConfig, colour: str, shape: str, seed: int) -> Path:
    """OUT/pictures/<colour>-<shape>-seed<S>-az<A>-el<E>.png: the embedded shapes renderer's picture of the primitive
    (size, yaw and light drawn by ``seed``) from the run's reference camera."""
    name = f"{colour}-{shape}-seed{seed}-az{reference.azimuth:g}-el{reference.elevation:g}"
    path = out / "pictures" / f"{name}-d{reference.distance:g}-fov{reference.fov:g}.png"
    if not path.is_file():
        write_png(reference_picture(colour, shape, reference.camera(), seed), path)
    return path


def frames_cut_off(mesh, export: dict, config: Text3DConfig) -> int:
    """Turntable frames in which some vertex of the mesh (world axes) lies outside the frame."""
    e = config.export
    orbit = export.get("turntable", {"target": [0.0, 0.0, 0.0], "distance": e.turntable_distance})
    target = torch.tensor(orbit["target"])
    cameras = turntable_cameras(e.turntable_frames, e.turntable_elevation, orbit["distance"], e.turntable_fov, target)
    points = camera_coordinates(torch.as_tensor(mesh.vertices, dtype=torch.float32), cameras)
    return int((points.abs().amax(dim=(1, 2)) > 1).sum())


def grade(run_dir: Path, colour: str, shape: str, config: Text3DConfig, device, judge: ShapeJudge) -> dict:
    """Every measurement of one run folder's exported mesh (and its NeRF, for fog)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    mesh = read_exported_mesh(run_dir / "mesh.ply")
    verdict = judge_mesh(mesh, judge)
    shape_topology = topology(mesh)
    area = hull_area_ratio(mesh)
    fit = best_fit_iou(mesh, shape)
    sections = cross_sections(mesh)
    hue, saturation = colour_error(mesh, colour) if len(mesh.faces) else (math.nan, math.nan)
    row = {
        "colour_ok": verdict["colour"] == colour,
        "shape_ok": verdict["shape"] == shape,
        "seen": f"{verdict['colour']} {verdict['shape']}",
        "pieces": shape_topology.pieces,
        "genus": shape_topology.genus,
        "genus_ok": shape_topology.genus == SHAPE_GENUS[shape],
        "area": area,
        "iou": fit.iou,
        "outline": "".join(OUTLINE_MARKS[section.outline] for section in sections),
        "outline_ok": outline_matches(shape, sections),
        "fill": sum(section.rectangle_fill for section in sections) / len(sections),
        "smooth": surface_over_primitive(mesh, shape, fit),
        "fog": scene_fog(run_dir, config, device),
        "hue": hue,
        "saturation": saturation,
        "s_step": metrics["seconds_per_step"],
        "export_s": metrics["export"]["seconds"],
        "seconds": metrics["train_seconds"] + metrics["export"]["seconds"],
        "cut": frames_cut_off(mesh, metrics["export"], config),
    }
    row["pass"] = (
        row["colour_ok"]
        and row["shape_ok"]
        and is_solid(shape, shape_topology, area)
        and fit.iou >= MIN_FIT_IOU
        and row["outline_ok"]
    )
    return row


def print_table(title: str, rows: list[tuple[str, int, dict]]) -> None:
    print(f"\n{title}")
    header = f"{'prompt':<20}{'seed':>5}  {'judge sees':<18}{'pieces':>7}{'genus':>6}{'area/hull':>10}{'IoU':>6}"
    header += f"{'outline':>8}{'fill':>6}{'smooth':>7}{'fog':>7}{'hue':>6}{'sat':>6}{'s/step':>7}{'export':>7}"
    print(header + f"{'total':>7}{'cut':>5}  pass")
    for prompt, seed, r in rows:
        judged = ("✓ " if r["colour_ok"] and r["shape_ok"] else "✗ ") + r["seen"]
        genus = "-" if r["genus"] is None else str(r["genus"])
        fog = "-" if math.isnan(r["fog"]) else f"{r['fog']:.1%}"  # a refine stage is opaque: no fog to measure
        print(
            f"{prompt:<20}{seed:>5}  {judged:<18}{r['pieces']:>7}{genus:>6}{r['area']:>10.2f}{r['iou']:>6.2f}"
            f"{r['outline']:>8}{r['fill']:>6.2f}{r['smooth']:>7.2f}{fog:>7}{r['hue']:>6.2f}{r['saturation']:>6.2f}"
            f"{r['s_step']:>7.2f}{r['export_s']:>7.0f}{r['seconds']:>7.0f}{r['cut']:>5}  {'yes' if r['pass'] else 'no'}"
        )

    def mean(key: str) -> float:
        values = [r[key] for _, _, r in rows if r[key] is not None and math.isfinite(r[key])]
        return sum(values) / len(values) if values else math.nan

    judged = sum(r["colour_ok"] and r["shape_ok"] for _, _, r in rows)
    fog_mean = "-" if math.isnan(mean("fog")) else f"{mean('fog'):.1%}"
    genus = sum(r["genus_ok"] for _, _, r in rows)
    outlines = sum(r["outline_ok"] for _, _, r in rows)
    cubes = [r for prompt, _, r in rows if prompt.endswith("cube")]
    passed = sum(r["pass"] for _, _, r in rows)
    framed = sum(r["cut"] == 0 for _, _, r in rows)
    square_cubes = f"  cubes square {sum(r['outline_ok'] for r in cubes)}/{len(cubes)}" if cubes else ""
    print(
        f"{'mean / count':<25}{judged:>3}/{len(rows)} judged right  genus right {genus}/{len(rows)}  "
        f"outline right {outlines}/{len(rows)}{square_cubes}  area/hull {mean('area'):.2f}  IoU {mean('iou'):.3f} "
        f"(least {min(r['iou'] for _, _, r in rows):.2f})  smooth {mean('smooth'):.3f}  fog {fog_mean}  "
        f"hue {mean('hue'):.3f}  sat {mean('saturation'):.2f}  s/step {mean('s_step'):.2f}  "
        f"export {mean('export_s'):.0f} s  total {mean('seconds'):.0f} s  turntable framed {framed}/{len(rows)}  "
        f"passed {passed}/{len(rows)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="*", default=[caption(c, s) for c, s in ALL_PROMPTS])
    parser.add_argument("--quick", action="store_true", help="one prompt per shape: " + ", ".join(QUICK))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--configs", nargs="*", default=["dreamfusion"], help="presets to compare")
    parser.add_argument("--steps", type=int, default=None, help="train.steps of every run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("bench-runs/fidelity"))
    parser.add_argument("--tag", default="", help="suffix of the run folders of an ablation (with its overrides)")
    parser.add_argument(
        "--image",
        action="store_true",
        help="image-to-3D: each run gets a ground-truth picture of its prompt from the reference camera (tag 'image')",
    )
    parser.add_argument("overrides", nargs="*", help="dotted config overrides of every run")
    args = parser.parse_args()
    args.tag = "+".join(filter(None, ["image" if args.image else "", args.tag]))
    prompts = QUICK if args.quick else args.prompts
    if any("=" in prompt for prompt in prompts):  # `--prompts "a red cube" key=value` takes the override as a prompt
        parser.error("overrides go before --prompts (a prompt holds no '=')")
    values = {"device": args.device, **({"train.steps": args.steps} if args.steps else {})}
    judge = ShapeJudge.load(EMBEDDED_PRIOR_DIR / "judge.safetensors")
    prior = None
    for preset in args.configs:
        tables: dict[str, list] = {}
        for prompt in prompts:
            colour, shape = prompt.split()[-2:]
            for seed in args.seeds:
                run_dir = args.out / (preset + (f"+{args.tag}" if args.tag else "")) / f"{slugify(prompt)}-seed{seed}"
                config = load_config(Text3DConfig, preset, args.overrides, {**values, "prompt": prompt, "seed": seed})
                if args.image:
                    picture = ground_truth_picture(args.out, config.reference, colour, shape, seed)
                    config = dataclasses.replace(
                        config, reference=dataclasses.replace(config.reference, image=str(picture))
                    )
                device = resolve_device(config.device)
                stages = [("stage 1", run_dir)] + (
                    [("refine stage", refine_dir(run_dir))] if config.refine.enabled else []
                )
                if not (stages[-1][1] / "metrics.json").is_file():
                    prior = prior or load_prior_model(config.prior, device)
                    # An interrupted run resumes from its checkpoint; one stopped before its first starts over.
                    resume = (run_dir / "checkpoints" / "last.pt").is_file()
                    run_stages(config, prior, run_dir, device, resume=resume)
                for name, folder in stages:
                    row = grade(folder, colour, shape, config, device, judge)
                    tables.setdefault(name, []).append((prompt, seed, row))
        for name, rows in tables.items():
            title = f"{preset}{f' +{args.tag}' if args.tag else ''}" + (f" ({name})" if len(tables) > 1 else "")
            print_table(f"{title}  {' '.join(args.overrides)}", rows)


if __name__ == "__main__":
    main()
