"""An independent judge of exported meshes: render the mesh file itself, then ask the shape/colour classifier.

It sees only the exported mesh (its triangles and vertex colours), rendered by the small z-buffer rasterizer
below with Lambertian shading on a light background, from eight views around the object. Neither the NeRF
renderer nor the diffusion prior takes part; the classifier (dreamlift.embedded.judge) was trained on the
procedural dataset only. Colour is also read without any network, as the palette colour nearest in hue to the
mesh's mean vertex colour.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch
import trimesh

from dreamlift.embedded.judge import ShapeJudge
from dreamlift.embedded.shapes import nearest_hue_colour
from dreamlift.renderers.cameras import turntable_cameras
from dreamlift.renderers.shading import fixed_light


def rasterize(mesh: trimesh.Trimesh, c2w: torch.Tensor, fov_y: float, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Z-buffered colour (3×H×W) and coverage mask (H×W) of a z-up mesh with vertex colours, from one camera."""
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.as_tensor(mesh.faces, dtype=torch.long)
    colours = torch.as_tensor(np.asarray(mesh.visual.vertex_colors)[:, :3], dtype=torch.float32) / 255
    w2c = torch.linalg.inv(c2w)
    cam = vertices @ w2c[:3, :3].T + w2c[:3, 3]
    focal = 0.5 * size / math.tan(fov_y / 2)
    depth = -cam[:, 2]
    px = cam[:, 0] / depth * focal + size / 2
    py = -cam[:, 1] / depth * focal + size / 2
    normals = torch.tensor(np.array(mesh.face_normals), dtype=torch.float32)
    light, ambient = fixed_light(1, "cpu")
    shade = ambient + (1 - ambient) * (normals @ light[0]).clamp(min=0)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    zbuffer = torch.full((size, size), float("inf"))
    image = torch.empty(3, size, size)
    for ids in torch.arange(len(faces)).split(2048):
        chunk = faces[ids]
        ax, bx, cx = px[chunk[:, 0]], px[chunk[:, 1]], px[chunk[:, 2]]
        ay, by, cy = py[chunk[:, 0]], py[chunk[:, 1]], py[chunk[:, 2]]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        valid = area.abs() > 1e-9
        x, y = xs[None], ys[None]  # 1×H×W against per-face values F×1×1: barycentrics F×H×W
        w0 = ((bx[:, None, None] - x) * (cy[:, None, None] - y) - (by[:, None, None] - y) * (cx[:, None, None] - x)) / area[:, None, None]
        w1 = ((cx[:, None, None] - x) * (ay[:, None, None] - y) - (cy[:, None, None] - y) * (ax[:, None, None] - x)) / area[:, None, None]
        w2 = 1 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & valid[:, None, None]
        d = w0 * depth[chunk[:, 0], None, None] + w1 * depth[chunk[:, 1], None, None] + w2 * depth[chunk[:, 2], None, None]
        d = torch.where(inside, d, torch.full_like(d, float("inf")))
        nearest, index = d.min(dim=0)
        closer = nearest < zbuffer
        if closer.any():
            face = ids[index]  # H×W global face ids
            corner = faces[face]  # H×W×3 vertex ids
            b0, b1, b2 = (w.gather(0, index[None])[0] for w in (w0, w1, w2))
            colour = b0[..., None] * colours[corner[..., 0]] + b1[..., None] * colours[corner[..., 1]] + b2[..., None] * colours[corner[..., 2]]
            colour = colour * shade[face][..., None]
            image[:, closer] = colour[closer].T
            zbuffer = torch.where(closer, nearest, zbuffer)
    mask = torch.isfinite(zbuffer)
    background = torch.full((3, size, size), 0.94)
    return torch.where(mask[None], image, background), mask


def render_views(mesh: trimesh.Trimesh, views: int = 8, size: int = 64) -> torch.Tensor:
    """Views V×3×H×W of a z-up mesh around the object (elevation 15°, distance 1.8, fov 47.5°)."""
    cameras = turntable_cameras(views, 15.0, 1.8, 47.5)
    return torch.stack([rasterize(mesh, cameras.c2w[i], float(cameras.fov_y[i]), size)[0] for i in range(views)])


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
