"""What a running stage shows of its scenes: views drawn twice, as albedo (the colours) and lambertian-shaded under a
fixed light (the shape), from turntable-like cameras. The validation strips are four such views of every particle;
the live view is one view of particle 0, written as often as a watcher (the studio) asks for it."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from dreamlift.io import write_png
from dreamlift.render.shading import fixed_light
from dreamlift.scene.cameras import Cameras, orbit_cameras
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.scenes import Scene

LIVE_VIEW_FILE = "live.png"
"""The live view's name in a stage's validation folder."""
LIVE_VIEW_SHARE = 0.05
"""The live views take at most this share of a run's time: after a view that took t seconds, the next one comes no
sooner than t / share seconds (the first view, which also warms up the shaded render, does not count)."""
LIVE_VIEW_AZIMUTH_DEG = 35.0
"""The live view looks from the front and a little to the side, so two faces of a box show."""


@torch.no_grad()
def albedo_and_shaded(scene: Scene, cameras: Cameras, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Renders N×3×size×size of ``scene`` (put in eval mode) from ``cameras``: albedo, and shaded under
    :func:`fixed_light`."""
    scene.eval()
    albedo = scene.render(cameras, size, size).rgb
    shaded = scene.render(cameras, size, size, "lambertian", fixed_light(len(albedo), albedo.device)).rgb
    return albedo, shaded


def side_by_side(views: torch.Tensor) -> torch.Tensor:
    """Views N×3×H×W as one row 3×H×(N·W)."""
    return torch.cat(list(views), dim=2)


def live_view_camera(export: ExportConfig, device: torch.device) -> Cameras:
    """The one camera of the live view: the turntable's elevation, distance and field of view."""
    one = torch.ones(1)
    return orbit_cameras(
        one * math.radians(LIVE_VIEW_AZIMUTH_DEG),
        one * math.radians(export.turntable_elevation),
        one * export.turntable_distance,
        one * math.radians(export.turntable_fov),
    ).to(device)


def write_live_view(scene: Scene, export: ExportConfig, size: int, folder: Path, device: torch.device) -> Path:
    """Write ``folder/live.png`` (atomically): the live view of ``scene`` (on ``device``), albedo left and shaded
    right; returns its path. It draws no random numbers, so a run is the same with live views or without."""
    camera = live_view_camera(export, device)
    path = Path(folder) / LIVE_VIEW_FILE
    write_png(side_by_side(torch.cat(albedo_and_shaded(scene, camera, size))), path)
    return path
