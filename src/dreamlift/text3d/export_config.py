"""The export's settings (:class:`ExportConfig`), apart from the export itself so that reading a config imports no
mesh library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dreamlift.text3d.redraw import RedrawConfig


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
    across); a smaller closing leaves SDS crevices in the cube as handles."""
    bridge_size: int = 4
    """Radius in grid cells of the opening of ``solidify``: bridges and spikes thinner than about twice this go
    (4 at 128 cells: 0.14 scene units; the embedded prior's torus tubes are 0.18 and more thick, and an opening of
    6 erases the thinnest)."""
    smoothing: float = 2.0
    """``solidify``: standard deviation in grid cells of the Gaussian that blurs the solid before marching cubes
    (a narrower one leaves the SDS lumps)."""
    formats: tuple[str, ...] = ("glb", "obj", "ply")
    """Mesh files to write (mesh.<format>)."""
    textured: bool = False
    """NeRF and Gaussian exports: bake the surface colour (:func:`surface_colour`) into a UV texture (xatlas)
    instead of vertex colours. Refine-stage exports are always textured."""
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
