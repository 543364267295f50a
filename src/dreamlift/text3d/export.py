"""Export of a scene: a mesh (GLB, OBJ, PLY) and a turntable video.

A NeRF or 3D Gaussians are exported by marching cubes on their density with vertex colours, or with
``textured`` by a baked UV texture, coloured by the NeRF's albedo field or by what the Gaussians' renders show
(text3d/surface_colours.py; with ``redraw``, any scene's in the colours the prior redraws them in; Gaussians are also
written as themselves, gaussians.ply in the 3DGS layout); a DMTet mesh (the refine stage) is exported as it is,
always with a baked texture (text3d/texture.py). Textured meshes go to mesh.glb (texture embedded), mesh.obj +
mesh.mtl + texture.png, and mesh.ply (vertex colours sampled from the texture, PLY having no texture standard).

Axes: dreamlift's world is z-up; the files are written y-up (glTF's convention, which Blender's importers and
most viewers expect): (x, y, z)_world → (x, z, −y)_file.

The density threshold, when not given, is read off the renders: rays from eight views around the object are
marched at the renderer's step, and on each ray that becomes opaque we note the density where its transmittance
first falls below ½; the threshold is the median of those densities. The mesh surface is then where the renders
turn from see-through to solid, whatever the scale of the density.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from scipy import ndimage
from skimage import measure
from tqdm import tqdm

from dreamlift.embedded.fidelity import topology
from dreamlift.io import atomic_path, staged_writes, write_json, write_video
from dreamlift.render.mesh import AlbedoFn
from dreamlift.render.volume import ray_aabb
from dreamlift.scene.cameras import Z_UP_TO_Y_UP, generate_rays, turntable_cameras
from dreamlift.scene.fields import cell_centres, evaluate_in_chunks
from dreamlift.scene.gaussian_ply import write_gaussian_ply
from dreamlift.text3d.scenes import GaussianScene, MeshScene, NeRFScene, Scene
from dreamlift.text3d.surface_colours import PriorRedraw, RedrawConfig, RenderedColours
from dreamlift.text3d.texture import textured_mesh
from dreamlift.text3d.turntable import render_turntable

METRICS_FILE = "metrics.json"
"""A run folder's loss curve, timings and export statistics."""


@dataclass
class ExportConfig:
    """Mesh and turntable export."""

    resolution: int = 128
    """Marching-cubes grid cells per side of the scene cube."""
    threshold: float | None = None
    """Density of the surface; null = automatic: an SDF field's zero level set, Gaussians'
    ``gaussians.surface_density``, else read off the renders (auto_threshold, silhouette_threshold)."""
    min_component_fraction: float = 0.05
    """Connected pieces with fewer faces than this fraction of the largest are removed as floaters."""
    solidify: bool = True
    """NeRF exports: mesh the solid the density describes, cleaned (see :func:`solid_grid`): cells the surface
    encloses filled, tunnels narrower than about twice ``handle_size`` closed, bridges thinner than about twice
    ``bridge_size`` opened away, small pieces dropped, the surface smoothed over ``smoothing`` cells. Off:
    marching cubes on the raw density at the threshold."""
    handle_size: int = 6
    """Radius in grid cells of the morphological closing of ``solidify``: tunnels and crevices up to about twice
    as wide are filled (6 at 128 cells: 0.2 scene units; the embedded prior's torus holes are 0.3 and more
    across). On the bench, 4 left the cube's crevices as genus 2 and area 1.20 × hull; 6 closes them."""
    bridge_size: int = 4
    """Radius in grid cells of the opening of ``solidify``: bridges and spikes thinner than about twice this go
    (4 at 128 cells: 0.14 scene units; the embedded prior's torus tubes are 0.18 and more thick, and an opening of
    6 erases the thinnest)."""
    smoothing: float = 2.0
    """``solidify``: standard deviation in grid cells of the Gaussian that blurs the solid before marching cubes
    (1 left the SDS lumps; 2, with a closing of 6, brought area over hull to 0.89–1.03 on nine bench runs)."""
    formats: tuple[str, ...] = ("glb", "obj", "ply")
    """Mesh files to write (mesh.<format>)."""
    textured: bool = False
    """NeRF and Gaussian exports: bake the surface colour (:func:`surface_colour`) into a UV texture (xatlas)
    instead of vertex colours. Mesh-stage exports are always textured."""
    texture_resolution: int = 1024
    """Texture image size in pixels (square)."""
    texture_padding: int = 8
    """Texels by which the charts are grown into the empty space, against colour bleeding at UV seams."""
    turntable_frames: int = 60
    """Frames of the 360° turntable video; 0 skips it."""
    turntable_source: Literal["mesh", "scene"] = "mesh"
    """What the turntable shows: ``mesh``, the exported mesh rasterized (what the user gets; its colour is the
    field's albedo on the mesh's surface, the same the vertex colours and textures are sampled from); ``scene``,
    the optimised scene itself (the NeRF ray-marched, slower)."""
    turntable_fps: int = 20
    turntable_resolution: int = 128
    """Turntable frame size in pixels (made even for H.264)."""
    turntable_elevation: float = 15.0
    """Turntable camera elevation in degrees."""
    turntable_framing: Literal["fit", "fixed"] = "fit"
    """``fit``: the turntable orbits the exported mesh's bounding-box centre, as near as frames it whole with a
    margin (text3d/turntable.py); ``fixed``: it orbits the origin at ``turntable_distance``."""
    turntable_distance: float = 1.8
    """Camera distance (world units) of ``fixed`` framing and of the training's validation views."""
    turntable_fov: float = 47.5
    redraw: RedrawConfig = field(default_factory=RedrawConfig)
    """NeRF and Gaussian exports: their colours redrawn by the prior (off by default; see the presets)."""

    def __post_init__(self):
        if self.resolution < 8:
            raise ValueError("export resolution must be >= 8")
        if self.smoothing < 0:
            raise ValueError("export smoothing must be >= 0")
        if self.handle_size < 0 or self.bridge_size < 0:
            raise ValueError("export handle_size and bridge_size must be >= 0")
        if self.threshold is not None and self.threshold <= 0:
            raise ValueError("export threshold must be > 0 (or null for automatic)")
        unknown = set(self.formats) - {"glb", "obj", "ply"}
        if unknown:
            raise ValueError(f"unknown export format(s) {sorted(unknown)}; known: glb, obj, ply")
        if self.texture_resolution < 16 or self.texture_padding < 0:
            raise ValueError("texture_resolution must be >= 16 and texture_padding >= 0")
        if self.turntable_frames < 0 or self.turntable_fps <= 0 or self.turntable_resolution < 2:
            raise ValueError("turntable frames must be >= 0, fps > 0 and resolution >= 2")


@torch.no_grad()
def auto_threshold(scene: NeRFScene, views: int = 8, size: int = 64) -> float:
    """Median density at the point where each opaque ray's transmittance first drops below ½ (see above)."""
    device = next(scene.parameters()).device
    cameras = turntable_cameras(views, 15.0, 2.0, 45.0).to(device)
    origins, directions = generate_rays(cameras, size, size)
    origins, directions = origins.reshape(-1, 3), directions.reshape(-1, 3)
    step = scene.grid.step_size
    t_near, t_far = ray_aabb(origins, directions, scene.field.config.bound)
    t = t_near[:, None] + (torch.arange(scene.grid.config.num_samples, device=device) + 0.5) * step
    inside = t < t_far[:, None]
    points = origins[:, None] + t[..., None] * directions[:, None]
    density = torch.zeros_like(t)
    density[inside] = evaluate_in_chunks(scene.field.density, points[inside])
    transmittance = torch.exp(-torch.cumsum(density * step, dim=1))
    crossed = transmittance < 0.5
    opaque = crossed.any(dim=1)
    if not opaque.any():
        return float(density.max().item()) + 1.0  # nothing is solid: a threshold above every density
    first = crossed[opaque].float().argmax(dim=1)
    return float(density[opaque].gather(1, first[:, None]).median().item())


@torch.no_grad()
def silhouette_threshold(
    scene: GaussianScene, padded: np.ndarray, views: int = 8, size: int = 32, seen_opacity: float = 0.25
) -> float:
    """The density whose level set best matches the silhouettes of the Gaussians' own renders, from ``views``
    turntable views of ``size`` pixels: the threshold that fewest rays disagree on — a ray the render shows at
    least ``seen_opacity`` covered should reach it somewhere on its way through the scene cube, a clearer one
    should not. Gaussians render opaque long before their summed density reaches any fixed value (many faint
    ones add up along a ray, as a fog), so the surface is read off what is seen. ``padded``: the density on a grid
    over the scene cube padded with one empty cell (:func:`density_grid`, padded as in :class:`SurfaceVolume`),
    sampled trilinearly every half cell along each ray."""
    device = next(scene.parameters()).device
    cameras = turntable_cameras(views, 15.0, 2.0, 45.0).to(device)
    seen = (scene.render(cameras, size, size).opacity >= seen_opacity).reshape(-1).float()  # R rays
    origins, directions = generate_rays(cameras, size, size)
    origins, directions = origins.reshape(-1, 3), directions.reshape(-1, 3)
    t_near, t_far = ray_aabb(origins, directions, scene.bound)
    samples = 4 * (padded.shape[0] - 2)  # under half a cell apart: the cube's diagonal is under two of its sides
    fractions = (torch.arange(samples, device=device) + 0.5) / samples
    t = t_near[:, None] + (t_far - t_near).clamp(min=0)[:, None] * fractions
    points = origins[:, None] + t[..., None] * directions[:, None]  # R×samples×3
    peak = sample_padded_grid(padded, scene.bound, points.reshape(-1, 3)).reshape(-1, samples).amax(-1)  # R
    order = torch.argsort(peak)
    peak, seen = peak[order], seen[order]
    # A threshold between the k-th and (k+1)-th lowest peaks covers the rays from k on: it misses the seen ones
    # below k and wrongly covers the clear ones from k on.
    zero = seen.new_zeros(1)
    missed = torch.cat([zero, torch.cumsum(seen, 0)])
    wrong = (1 - seen).sum() - torch.cat([zero, torch.cumsum(1 - seen, 0)])
    k = int(torch.argmin(missed + wrong))
    lower = peak[k - 1] if k > 0 else peak.new_zeros(())
    upper = peak[k] if k < len(peak) else 2 * peak[-1] + 1
    return max(float((lower + upper) / 2), 1e-6)


def surface_threshold(scene: NeRFScene | GaussianScene, padded: np.ndarray, given: float | None = None) -> float:
    """The density of a stage-1 scene's surface: ``given``, else the scene's own (an SDF field's zero level set,
    the Gaussians' configured one), else read off the renders (:func:`auto_threshold`; for Gaussians
    :func:`silhouette_threshold` on ``padded``, the padded :func:`density_grid`)."""
    if given is not None:
        return given
    own = scene.surface_density()
    if own is not None:
        return own
    return silhouette_threshold(scene, padded) if isinstance(scene, GaussianScene) else auto_threshold(scene)


@torch.no_grad()
def density_grid(scene: NeRFScene | GaussianScene, resolution: int) -> np.ndarray:
    """Density at the centres of a resolution³ grid over the scene cube (float32, indexed [x, y, z])."""
    device = next(scene.parameters()).device
    values = evaluate_in_chunks(scene.density, cell_centres(resolution, scene.bound, device))
    return values.reshape(resolution, resolution, resolution).float().cpu().numpy()


@dataclass
class SurfaceVolume:
    """What marching cubes meshes: ``values`` at the cell centres of a resolution³ grid over the scene cube padded
    with one empty cell on every side (float32, (resolution + 2)³, indexed [x, y, z]), whose surface is where they
    cross ``level`` (inside above it); ``threshold`` is the density the surface was taken at."""

    values: np.ndarray
    level: float
    threshold: float
    bound: float

    @property
    def cell(self) -> float:
        """Cell size in world units."""
        return 2 * self.bound / (self.values.shape[0] - 2)

    def world(self, index: np.ndarray) -> np.ndarray:
        """World points (…×3) of fractional padded grid indices (…×3): unpadded cell i has its centre at
        (i + ½)·cell − bound and sits at padded index i + 1."""
        return (index - 0.5) * self.cell - self.bound

    def sample(self, points: torch.Tensor) -> torch.Tensor:
        """Trilinear values N at world points N×3 inside the scene cube."""
        return sample_padded_grid(self.values, self.bound, points)

    def normalised_sdf(self, points: torch.Tensor) -> torch.Tensor:
        """(level − value) / level at world points N×3, clamped to [−1, 1]: negative inside, zero on the surface
        (what the mesh stage fits its DMTet to)."""
        return ((self.level - self.sample(points)) / self.level).clamp(-1, 1)


def sample_padded_grid(values: np.ndarray, bound: float, points: torch.Tensor) -> torch.Tensor:
    """Trilinear values N at world points N×3 inside the scene cube [−bound, bound]³ of a grid laid out as
    :class:`SurfaceVolume`'s: cell centres over the cube, padded with one cell on every side ([x, y, z])."""
    grid = torch.from_numpy(values).to(points)
    cell = 2 * bound / (grid.shape[0] - 2)
    index = (points + bound) / cell + 0.5  # the inverse of :meth:`SurfaceVolume.world`
    normalised = index / (grid.shape[0] - 1) * 2 - 1
    where = normalised.flip(-1).reshape(1, 1, 1, -1, 3)  # grid_sample reads (z, y, x) against [x, y, z] values
    return F.grid_sample(grid[None, None], where, align_corners=True).reshape(-1)


@torch.no_grad()
def surface_volume(scene: NeRFScene | GaussianScene, config: ExportConfig) -> SurfaceVolume:
    """The density on the export grid at the (auto) threshold, or with ``solidify`` the smooth solid it describes
    (:func:`solid_grid`, surface at ½)."""
    values = np.pad(density_grid(scene, config.resolution), 1, constant_values=0.0)
    threshold = surface_threshold(scene, values, config.threshold)
    level = threshold
    if config.solidify:
        values, level = solid_grid(values > threshold, config), 0.5
    return SurfaceVolume(values, level, threshold, scene.bound)


@torch.no_grad()
def extract_mesh(scene: NeRFScene | GaussianScene, config: ExportConfig) -> tuple[trimesh.Trimesh, float]:
    """Marching cubes on the :func:`surface_volume`, floaters removed; world (z-up) axes, no colours.

    Returns the mesh and the density threshold used. The padding's empty cells close the mesh.
    """
    volume = surface_volume(scene, config)
    if volume.values.max() <= volume.level:
        return trimesh.Trimesh(), volume.threshold
    vertices, faces, _, _ = measure.marching_cubes(volume.values, level=volume.level)
    mesh = trimesh.Trimesh(volume.world(vertices), faces[:, ::-1], process=True)
    mesh = drop_floaters(mesh, config.min_component_fraction)
    return mesh, volume.threshold


def solid_grid(occupied: np.ndarray, config: ExportConfig) -> np.ndarray:
    """A smooth occupancy in [0, 1] (mesh it at ½) of the solid that ``occupied`` (bools, padded with one empty
    cell) describes: closed by a ball of ``handle_size`` cells and opened by one of ``bridge_size`` (tunnels and
    thin bridges of SDS noise go, the shape's own holes stay), enclosed cavities filled, pieces smaller than
    ``min_component_fraction`` of the largest dropped, then blurred by a Gaussian of ``smoothing`` cells so
    marching cubes gives a smooth surface."""
    margin = max(config.handle_size, config.bridge_size) + 1  # room outside, so closing never glues the solid to
    solid = np.pad(occupied, margin)  # the grid's faces
    if config.handle_size > 0:
        solid = ndimage.binary_closing(solid, ball(config.handle_size))
    if config.bridge_size > 0:
        solid = ndimage.binary_opening(solid, ball(config.bridge_size))
    solid = solid[margin:-margin, margin:-margin, margin:-margin]
    solid = ndimage.binary_fill_holes(solid)
    labels, count = ndimage.label(solid)
    if count > 1:
        sizes = ndimage.sum_labels(solid, labels, index=np.arange(1, count + 1))
        solid = np.isin(labels, 1 + np.flatnonzero(sizes >= config.min_component_fraction * sizes.max()))
    return ndimage.gaussian_filter(solid.astype(np.float32), sigma=config.smoothing)


def ball(radius: int) -> np.ndarray:
    """The structuring element of the morphology: the cells within ``radius`` steps along the axes (an octahedron)."""
    return ndimage.iterate_structure(ndimage.generate_binary_structure(3, 1), radius)


def drop_floaters(mesh: trimesh.Trimesh, min_fraction: float) -> trimesh.Trimesh:
    """The mesh without connected pieces of fewer than ``min_fraction`` of the largest piece's faces."""
    pieces = mesh.split(only_watertight=False)
    if len(pieces) <= 1:
        return mesh
    largest = max(len(p.faces) for p in pieces)
    return trimesh.util.concatenate([p for p in pieces if len(p.faces) >= min_fraction * largest])


def surface_colour(scene: Scene, redraw: PriorRedraw | None = None) -> AlbedoFn:
    """The colour of a scene's exported surface at world points: with ``redraw``, the hue and saturation of the
    prior's redrawing of its renders (:class:`~dreamlift.text3d.surface_colours.RenderedColours`); without, its
    albedo field, or for Gaussians, which have none, what their renders show."""
    if redraw is not None:
        return RenderedColours(scene, redraw.config.size, redraw=redraw)
    return RenderedColours(scene) if isinstance(scene, GaussianScene) else scene.albedo


@torch.no_grad()
def scene_mesh(scene: Scene, config: ExportConfig, colour: AlbedoFn) -> tuple[trimesh.Trimesh, dict]:
    """The mesh to export (world axes) with its colours — vertex colours, or a baked texture, of ``colour``
    (:func:`surface_colour`) — and statistics."""
    device = next(scene.parameters()).device
    if isinstance(scene, MeshScene):
        vertices, faces = scene.geometry()
        mesh = trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy(), process=True)
        mesh = drop_floaters(mesh, config.min_component_fraction)
        stats, textured = {}, True
    else:
        mesh, threshold = extract_mesh(scene, config)
        stats, textured = {"threshold": threshold}, config.textured
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


def particle_dir(run_dir: Path, particle: int) -> Path:
    """Where particle ``particle`` is exported: the run folder itself for particle 0, else ``particle-<i>/``."""
    return run_dir if particle == 0 else run_dir / f"particle-{particle}"


def export_scene(scene: Scene, config: ExportConfig, out_dir: Path, redraw: PriorRedraw | None = None) -> dict:
    """Write the meshes and the turntable of ``scene`` into ``out_dir``; returns export statistics. ``redraw``:
    the prior's redrawing of a Gaussian scene's colours (:func:`surface_colour`)."""
    start = time.time()
    scene.eval()
    colour = surface_colour(scene, redraw)
    mesh, stats = scene_mesh(scene, config, colour)
    if len(mesh.faces) == 0:
        tqdm.write("warning: the exported mesh is empty (nothing in the scene is solid)")
    write_meshes(mesh, out_dir, config.formats)
    if isinstance(scene, GaussianScene):
        write_gaussian_ply(scene.gaussians, out_dir / "gaussians.ply")
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
