"""An independent judge of exported meshes: render the mesh file itself, then ask the shape/colour classifier.

It sees only the exported mesh (its triangles and vertex colours), drawn by the project's rasterizer
(render/raster.py) with flat Lambertian shading on a light background, from eight views around the object.
Neither the NeRF renderer nor the diffusion prior takes part; the classifier (dreamlift.embedded.judge) was trained
on the procedural dataset only. Colour is also read without any network, as the palette colour nearest in hue to the
mesh's mean vertex colour.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
import trimesh

from dreamlift.embedded.judge import ShapeJudge
from dreamlift.embedded.shapes import nearest_hue_colour
from dreamlift.render.raster import RasterizerConfig, clip_space, interpolate, rasterize
from dreamlift.render.shading import fixed_light
from dreamlift.scene.cameras import Cameras, turntable_cameras
from dreamlift.scene.mesh_geometry import face_normals


def render_mesh_file(mesh: trimesh.Trimesh, cameras: Cameras, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Views B×3×H×W of a z-up mesh with vertex colours, flat Lambertian-shaded under the fixed light on the light
    background, and coverage masks B×H×W, drawn by the project's rasterizer (no antialiasing)."""
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.as_tensor(mesh.faces, dtype=torch.long)
    colours = torch.as_tensor(np.asarray(mesh.visual.vertex_colors)[:, :3], dtype=torch.float32) / 255
    config = RasterizerConfig(backend="torch")
    fragments = rasterize(clip_space(vertices, cameras, size, size), faces, size, size, config)
    light, ambient = fixed_light(1, "cpu")
    shade = ambient + (1 - ambient) * (face_normals(vertices, faces) @ light[0]).clamp(min=0)  # F
    colour = interpolate(colours, fragments, faces) * shade[fragments.face.clamp(min=0)][..., None]
    mask = fragments.face >= 0
    images = torch.where(mask[..., None], colour, torch.full_like(colour, 0.94))
    return images.permute(0, 3, 1, 2), mask


def render_views(mesh: trimesh.Trimesh, views: int = 8, size: int = 64) -> torch.Tensor:
    """Views V×3×H×W of a z-up mesh around the object (elevation 15°, distance 1.8, fov 47.5°)."""
    return render_mesh_file(mesh, turntable_cameras(views, 15.0, 1.8, 47.5), size)[0]


def hue_colour(mesh: trimesh.Trimesh) -> str:
    """The palette colour whose hue is nearest the mean vertex colour's."""
    return nearest_hue_colour(np.asarray(mesh.visual.vertex_colors)[:, :3].mean(0) / 255)


def judge_mesh(mesh: trimesh.Trimesh, judge: ShapeJudge) -> dict:
    """Majority colour and shape over eight views, their vote shares, and the hue colour."""
    if len(mesh.faces) == 0:
        return {"colour": None, "shape": None, "colour_votes": 0.0, "shape_votes": 0.0, "hue_colour": None}
    colours, shapes = judge.predict(render_views(mesh))
    colour, colour_count = Counter(colours).most_common(1)[0]
    shape, shape_count = Counter(shapes).most_common(1)[0]
    return {
        "colour": colour,
        "shape": shape,
        "colour_votes": colour_count / len(colours),
        "shape_votes": shape_count / len(shapes),
        "hue_colour": hue_colour(mesh),
    }
