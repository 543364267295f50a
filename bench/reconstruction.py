"""The ceiling of any guidance: text3d's field and export fitted to ground-truth pictures alone, no prior.

    python bench/reconstruction.py [key=value ...] [--shapes cube torus] [--steps 400] [--views 8]
                                   [--elevations 15 60] [--out bench-runs/reconstruction]

Each shape (red, its size, proportions and yaw drawn by seed 0) is drawn by the embedded shapes renderer from
``--views`` azimuths at each of ``--elevations`` (the same pictures the fidelity bench's ``--image`` uses, from
more cameras), and a stage-1 scene of the preset (with the overrides) is fitted to them by the image-to-3D
reference loss and the field's own regularisers (the eikonal term): one picture per step, in turn. The scene is
exported as text3d exports it and graded as bench/fidelity.py grades a run: genus, best-fit IoU, cross-section
outlines and their rectangle fill, surface over the fitted primitive's.

What the guidance cannot beat: a shape that this fit, seeing the true object from every side, does not make is
beyond the field, its schedule or the export, not the prior. The pictures show silhouettes and shading; the
field's albedo takes the shading as colour, so the surface between silhouettes is held only by the regularisers.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from dreamlift.config import load_config
from dreamlift.embedded.cross_sections import OUTLINE_MARKS, cross_sections, outline_matches
from dreamlift.embedded.fidelity import best_fit_iou, read_exported_mesh, surface_over_primitive
from dreamlift.embedded.shapes import SHAPES, reference_picture
from dreamlift.scene.topology import topology
from dreamlift.text3d import DEFAULT_PRESET
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.export import export_scene
from dreamlift.text3d.reference import ReferenceConfig, ReferenceView, with_border_mask
from dreamlift.text3d.scene_kinds import first_stage


def ground_truth_views(shape: str, views: int, elevations: list[float], config: ReferenceConfig) -> list[ReferenceView]:
    """Pictures of a red ``shape`` (seed 0) with their cameras: ``views`` azimuths at each elevation, the rings
    offset by half a step so that no two cameras share an azimuth."""
    out = []
    for ring, elevation in enumerate(elevations):
        for k in range(views):
            azimuth = (k + 0.5 * (ring % 2)) * 360 / views
            camera = dataclasses.replace(config, azimuth=azimuth, elevation=elevation)
            picture = with_border_mask(reference_picture("red", shape, camera.camera()), camera.background_tolerance)
            out.append(ReferenceView(camera, picture, torch.device("cpu")))
    return out


def fit(config: Text3DConfig, views: list[ReferenceView], steps: int, out_dir: Path) -> float:
    """Fit the preset's stage-1 scene to ``views`` (one per step, in turn), export it to ``out_dir``; seconds."""
    torch.manual_seed(config.seed)
    stage = first_stage(config)
    device = torch.device("cpu")
    scene, generator = stage.make_scene(device), torch.Generator().manual_seed(config.seed)
    optimizer = stage.make_optimizer(scene)
    size = config.train.resolution
    start = time.time()
    for step in range(steps):
        scene.train()
        scene.before_step(step, step / steps)
        view = views[step % len(views)]
        loss = view.loss(scene.render(view.camera, size, size, stratified=True, generator=generator))
        loss = loss + stage.sdf_regularisation(scene.field, generator, device)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.time() - start
    export_scene(scene, dataclasses.replace(config.export, turntable_frames=0), out_dir)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="dotted config overrides of the preset")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--views", type=int, default=8, help="azimuths per elevation")
    parser.add_argument("--elevations", type=float, nargs="+", default=[15.0, 60.0])
    parser.add_argument("--out", type=Path, default=Path("bench-runs/reconstruction"))
    args = parser.parse_args()
    config = load_config(Text3DConfig, DEFAULT_PRESET, args.overrides)
    if config.field.geometry != "sdf" or config.scene != "nerf":
        parser.error("the reconstruction bench fits the NeRF with an SDF field (the default preset's)")
    setting = " ".join([DEFAULT_PRESET, *args.overrides])
    print(f"{setting}: {args.steps} steps, {args.views} azimuths at elevations {args.elevations}")
    print(f"{'shape':10} {'genus':>5} {'IoU':>5} {'outline':>7} {'fill':>5} {'smooth':>6} {'fit s':>6}")
    for shape in args.shapes:
        views = ground_truth_views(shape, args.views, args.elevations, config.reference)
        out_dir = args.out / ("+".join(args.overrides) or "defaults") / shape
        seconds = fit(config, views, args.steps, out_dir)
        mesh = read_exported_mesh(out_dir / "mesh.ply")
        primitive = best_fit_iou(mesh, shape)
        sections = cross_sections(mesh)
        outline = "".join(OUTLINE_MARKS[s.outline] for s in sections)
        fill = sum(s.rectangle_fill for s in sections) / len(sections)
        mark = "" if outline_matches(shape, sections) else " (wrong)"
        print(
            f"{shape:10} {topology(mesh).genus:>5} {primitive.iou:5.2f} {outline:>7} {fill:5.2f} "
            f"{surface_over_primitive(mesh, shape, primitive):6.2f} {seconds:6.0f}{mark}"
        )


if __name__ == "__main__":
    main()
