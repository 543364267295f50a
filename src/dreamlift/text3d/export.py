"""Export of a scene: a mesh (GLB, OBJ, PLY), the scene's own files and a turntable video, and the run's
metrics.json.

The scene gives its surface (text3d/surface.py: marching cubes on a NeRF's or Gaussians' density, cleaned by
text3d/solid.py; a refine stage's DMTet mesh as it is) and the colour of that surface: a NeRF's albedo field,
what the Gaussians' renders show, or with ``redraw`` what the prior redraws them in (text3d/surface_colours.py).
The colours go on as vertex colours or, with ``textured`` (the refine stage's always), as a baked UV texture
(text3d/texture.py). Files are written by text3d/mesh_files.py, the turntable by text3d/turntable.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import trimesh
from tqdm import tqdm

from dreamlift.io import staged_writes, write_json, write_video
from dreamlift.render.mesh import AlbedoFn
from dreamlift.scene.fields import evaluate_in_chunks
from dreamlift.scene.topology import topology
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.mesh_files import write_meshes
from dreamlift.text3d.redraw import PriorRedraw
from dreamlift.text3d.texture import textured_mesh
from dreamlift.text3d.turntable import render_turntable

if TYPE_CHECKING:
    from dreamlift.text3d.scenes import Scene

METRICS_FILE = "metrics.json"
"""A run folder's loss curve, timings and export statistics."""


@torch.no_grad()
def scene_mesh(scene: Scene, config: ExportConfig, colour: AlbedoFn) -> tuple[trimesh.Trimesh, dict]:
    """The mesh to export (world axes) with its colours — vertex colours, or a baked texture, of ``colour``
    (:meth:`~dreamlift.text3d.scenes.Scene.surface_colour`) — and statistics."""
    device = next(scene.parameters()).device
    mesh, stats = scene.surface_mesh(config)
    textured = scene.always_textured or config.textured
    shape = topology(mesh)
    stats.update(
        vertices=len(mesh.vertices),
        faces=len(mesh.faces),
        watertight=bool(len(mesh.faces)) and bool(mesh.is_watertight),
        pieces=shape.pieces,
        genus=shape.genus,
    )
    if len(mesh.faces) == 0:
        return mesh, stats
    if textured:
        mesh = textured_mesh(mesh, colour, config.texture_resolution, config.texture_padding, device)
    else:
        points = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=device)
        colours = evaluate_in_chunks(colour, points)
        colours = (colours.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
        mesh.visual.vertex_colors = np.concatenate([colours, np.full((len(colours), 1), 255, np.uint8)], axis=1)
    stats["textured"] = textured
    return mesh, stats


def particle_dir(run_dir: Path, particle: int) -> Path:
    """Where particle ``particle`` is exported: the run folder itself for particle 0, else ``particle-<i>/``."""
    return run_dir if particle == 0 else run_dir / f"particle-{particle}"


def export_scene(scene: Scene, config: ExportConfig, out_dir: Path, redraw: PriorRedraw | None = None) -> dict:
    """Write the meshes, the scene's own files and the turntable of ``scene`` into ``out_dir``; returns export
    statistics. ``redraw``: the prior's redrawing of the scene's colours
    (:meth:`~dreamlift.text3d.scenes.Scene.surface_colour`)."""
    start = time.time()
    scene.eval()
    colour = scene.surface_colour(redraw)
    mesh, stats = scene_mesh(scene, config, colour)
    if len(mesh.faces) == 0:
        tqdm.write("warning: the exported mesh is empty (nothing in the scene is solid)")
    write_meshes(mesh, out_dir, config.formats)
    scene.write_extras(out_dir)
    if config.turntable_frames > 0:
        frames, stats["turntable"] = render_turntable(scene, mesh, config, colour)
        write_video(frames, out_dir / "turntable.mp4", config.turntable_fps)
    stats["seconds"] = round(time.time() - start, 2)
    return stats


def export_particles(
    scenes: list[Scene], config: ExportConfig, run_dir: Path, metrics: dict, redraw: PriorRedraw | None = None
) -> dict:
    """Export each particle to its folder (``redraw``: see :func:`export_scene`) and write ``metrics`` with the
    exports' statistics — ``export`` (particle 0's) and, with several particles, ``particle_exports`` (all) — as
    ``run_dir/metrics.json``. Everything is built in a staging folder and moved in when whole, metrics.json last,
    so the meshes, turntables and metrics of a run always belong together. Returns the updated metrics."""
    with staged_writes(run_dir, last=(METRICS_FILE,)) as staging:
        exports = [export_scene(scene, config, particle_dir(staging, i), redraw) for i, scene in enumerate(scenes)]
        metrics.update(export=exports[0], **({"particle_exports": exports} if len(exports) > 1 else {}))
        write_json(staging / METRICS_FILE, metrics)
    return metrics
