"""The turntable video of an export: a 360° orbit around the exported mesh, framed so that none of it is cut off.

The orbit circles the centre of the mesh's bounding box (an object need not sit at the origin: a cone's base
hangs below it) at the ``turntable_elevation`` and ``turntable_fov`` of the export config, and at the least
distance at which every vertex, seen from every frame's camera, lies inside the middle 1/:data:`FRAME_MARGIN` of
the frame. ``turntable_framing: fixed`` orbits the origin at ``turntable_distance`` instead.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import trimesh

from dreamlift.io import to_uint8
from dreamlift.render.mesh import AlbedoFn, render_mesh
from dreamlift.render.raster import clip_space
from dreamlift.render.shading import fixed_light
from dreamlift.scene.cameras import Cameras, turntable_cameras

FRAME_MARGIN = 1.1
"""The framed mesh spans at most 1/1.1 of the frame's width and height in every frame."""


def camera_coordinates(points: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    """Normalised image coordinates (B×N×2, x right and y up; the frame is [−1, 1]²) of world points N×3 seen by
    square-framed cameras; a point behind a camera gets inf."""
    clip = clip_space(points, cameras, 1, 1)  # B×N×4, w the view depth
    depth = clip[..., 3:]
    return torch.where(depth > 0, clip[..., :2] / depth, torch.full_like(clip[..., :2], math.inf))


def framed_distance(points: torch.Tensor, cameras: Cameras, target: torch.Tensor) -> float:
    """The least distance from ``target`` (3) of orbit cameras with the directions and fields of view of
    ``cameras`` at which every point (N×3) lies within 1/:data:`FRAME_MARGIN` of the frame's centre.

    A point at offset p from the target, with right/up components x, y and component z towards the camera, is
    at depth d − z from a camera at distance d, so it is framed when max(|x|, |y|) ≤ t (d − z) with t the tangent of
    half the field of view over the margin: d ≥ z + max(|x|, |y|) / t."""
    rotation = cameras.c2w[:, :3, :3]  # B×3×3: columns right, up, back
    local = torch.einsum("bji,nj->bni", rotation, points - target)
    reach = local[..., :2].abs().max(dim=-1).values  # B×N
    tangent = (torch.tan(cameras.fov_y / 2) / FRAME_MARGIN)[:, None]
    return float((local[..., 2] + reach / tangent).max())


def turntable_orbit(mesh: trimesh.Trimesh, config) -> tuple[Cameras, dict]:
    """The turntable's cameras (``config.turntable_frames``, an ``ExportConfig``) and their orbit
    (``{"target": [x, y, z], "distance": d}``, world units) for ``mesh`` (world axes)."""
    frames, elevation, fov = config.turntable_frames, config.turntable_elevation, config.turntable_fov
    if config.turntable_framing == "fixed" or len(mesh.vertices) == 0:
        target, distance = torch.zeros(3), config.turntable_distance
    else:
        low, high = torch.tensor(np.array(mesh.bounds), dtype=torch.float32)
        target = (low + high) / 2
        directions = turntable_cameras(frames, elevation, 1.0, fov, target)
        distance = framed_distance(torch.as_tensor(mesh.vertices, dtype=torch.float32), directions, target)
    orbit = {"target": [round(float(v), 5) for v in target], "distance": round(distance, 5)}
    return turntable_cameras(frames, elevation, orbit["distance"], fov, target), orbit


@torch.no_grad()
def render_turntable(scene, mesh: trimesh.Trimesh, config, colour: AlbedoFn) -> tuple[np.ndarray, dict]:
    """Frames F×H×W×3 (uint8) on the :func:`turntable_orbit` of ``mesh`` (world axes), Lambertian-shaded under a
    light fixed in the world: the mesh rasterized in its ``colour``, or with ``turntable_source: scene`` the scene
    itself; and the orbit."""
    size = config.turntable_resolution + config.turntable_resolution % 2
    device = next(scene.parameters()).device
    cameras, orbit = turntable_orbit(mesh, config)
    cameras = cameras.to(device)
    light = fixed_light(1, device)
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=device)
    faces = torch.as_tensor(mesh.faces, dtype=torch.long, device=device)
    frames = []
    for i in range(len(cameras)):
        if config.turntable_source == "scene":
            out = scene.render(cameras[i], size, size, shading="lambertian", light=light)
        else:
            out = render_mesh(vertices, faces, colour, scene.background, cameras[i], size, size, "lambertian", light)
        frames.append(to_uint8(out.rgb[0]))
    return np.stack(frames), orbit
