"""Mesh files: GLB, OBJ (+ MTL and texture) and PLY, written atomically and y-up.

Axes: dreamlift's world is z-up; the files are written y-up (glTF's convention, which Blender's importers and
most viewers expect): (x, y, z)_world → (x, z, −y)_file.
"""

from __future__ import annotations

import trimesh

from dreamlift.io import atomic_path
from dreamlift.scene.cameras import Z_UP_TO_Y_UP


def write_meshes(mesh: trimesh.Trimesh, out_dir, formats: tuple[str, ...]) -> list:
    """Write ``mesh.<format>`` files (y-up) atomically, plus mesh.mtl and texture.png beside a textured OBJ;
    returns the paths written."""
    file_mesh = mesh.copy()
    file_mesh.apply_transform(Z_UP_TO_Y_UP)
    textured = isinstance(file_mesh.visual, trimesh.visual.TextureVisuals)
    files: dict[str, bytes | str] = {}
    for fmt in formats:
        if fmt == "obj" and textured:
            # A plain MTL material with a white diffuse colour, so viewers show the texture unscaled.
            obj_mesh = file_mesh.copy()
            obj_mesh.visual.material = trimesh.visual.material.SimpleMaterial(
                image=file_mesh.visual.material.baseColorTexture,
                diffuse=(255, 255, 255, 255),
                ambient=(255, 255, 255, 255),
                specular=(0, 0, 0, 255),
                name="texture",
            )
            text, extra = trimesh.exchange.obj.export_obj(obj_mesh, return_texture=True, mtl_name="mesh.mtl")
            files.update(extra)
            files["mesh.obj"] = text
        elif fmt == "ply" and textured:
            coloured = file_mesh.copy()
            coloured.visual = file_mesh.visual.to_color()
            files["mesh.ply"] = coloured.export(file_type="ply")
        else:
            files[f"mesh.{fmt}"] = file_mesh.export(file_type=fmt)
    paths = []
    for name, data in files.items():
        path = out_dir / name
        with atomic_path(path) as tmp:
            tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        paths.append(path)
    return paths
