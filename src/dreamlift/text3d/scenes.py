"""What a text3d stage optimises and the export writes: a scene, the 3D model rendered with its background.

Every scene kind — a NeRF or 3D Gaussians in stage 1 (text3d/nerf.py, text3d/gaussians.py), a DMTet mesh in the
refine stage (text3d/refine.py) — answers the same calls, so that the trainer, the export and the run folders
never ask which kind they hold: it renders from cameras, hands its parameters to its stage's optimiser, keeps
its whole state in its state dict, and gives the export its surface (:meth:`Scene.surface_mesh`), the colours
of that surface (:meth:`Scene.surface_colour`) and any files of its own (:meth:`Scene.write_extras`). A kind's
module holds its scene and its stage; text3d/scene_kinds.py names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from dreamlift.render.mesh import AlbedoFn
from dreamlift.render.output import CoveredPixels, RenderOutput, Shading
from dreamlift.scene.cameras import Cameras
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.redraw import PriorRedraw
from dreamlift.text3d.surface import extract_mesh
from dreamlift.text3d.surface_colours import RenderedColours

if TYPE_CHECKING:
    import trimesh


def parameter_groups(modules: dict[str, nn.Module], learning_rates: dict[str, float]) -> list[dict]:
    """Adam parameter groups, one per named module that has parameters; ``learning_rates`` maps each name to
    its rate."""
    groups = []
    for name, module in modules.items():
        params = list(module.parameters())
        if params:
            groups.append({"params": params, "lr": learning_rates[name], "name": name})
    return groups


class Scene(nn.Module):
    """A 3D model in front of a background, in the scene cube [−bound, bound]³."""

    bound: float
    """Half the side of the scene cube (world units)."""
    always_textured: bool = False
    """Whether its export always bakes a texture (else only with ``export.textured``)."""

    def render(
        self,
        cameras: Cameras,
        height: int,
        width: int,
        shading: Shading = "albedo",
        light: tuple[torch.Tensor, torch.Tensor] | None = None,
        stratified: bool = False,
        generator: torch.Generator | None = None,
    ) -> RenderOutput:
        """Render B cameras at height×width, shaded ``shading`` under ``light`` (B×3 directions and colours);
        ``stratified`` and ``generator``: random sample positions along rays, where the kind samples them."""
        raise NotImplementedError

    def before_step(self, step: int, progress: float | None = None) -> None:
        """Bring the scene up to ``step`` before it renders, at ``progress`` (0–1; None keeps its schedule):
        nothing by default."""

    def covered_pixels(self, cameras: Cameras, size: int, min_opacity: float = 0.5) -> CoveredPixels:
        """The pixels of albedo renders from B cameras at size×size that the scene covers at least
        ``min_opacity``, and what they show there (:class:`~dreamlift.render.output.CoveredPixels`)."""
        raise NotImplementedError

    def albedo(self, points: torch.Tensor) -> torch.Tensor:
        """Albedo N×3 in [0, 1] of world points N×3."""
        raise NotImplementedError

    def surface_mesh(self, config: ExportConfig) -> tuple[trimesh.Trimesh, dict]:
        """The surface to export (world axes, z up, no colours) and what to record of how it was made."""
        raise NotImplementedError

    def surface_colour(self, redraw: PriorRedraw | None = None) -> AlbedoFn:
        """The colour of the exported surface at world points: its albedo; with ``redraw``, the hue and saturation
        of the prior's redrawing of its renders (:class:`~dreamlift.text3d.surface_colours.RenderedColours`)."""
        if redraw is not None:
            return RenderedColours(self, redraw.config.size, redraw=redraw)
        return self.albedo

    def write_extras(self, out_dir: Path) -> None:
        """Write the files of its own that the export adds beside the mesh: none by default."""


class VolumeScene(Scene):
    """A stage-1 scene, whose density the export meshes by marching cubes (text3d/surface.py)."""

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """Density N at world points N×3."""
        raise NotImplementedError

    def surface_density(self) -> float | None:
        """The density of the scene's own surface, or None (the export reads one off the renders)."""
        return None

    def threshold_from_renders(self, padded: np.ndarray) -> float:
        """The density where the renders turn from see-through to solid; ``padded``: the density on the export's
        grid, padded with one empty cell (:class:`~dreamlift.text3d.surface.SurfaceVolume`)."""
        raise NotImplementedError

    def surface_mesh(self, config: ExportConfig) -> tuple[trimesh.Trimesh, dict]:
        mesh, threshold = extract_mesh(self, config)
        return mesh, {"threshold": threshold}
