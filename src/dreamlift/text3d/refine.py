"""The refine stage (Magic3D's coarse to fine) and its scene kind, a DMTet mesh with a texture field.

The refine stage starts a DMTet mesh from a stage-1 NeRF — its SDF fitted to the volume the NeRF's mesh is
exported from, its texture field a copy of the NeRF's field — and refines both with the same guidance at a higher
render resolution and a narrower timestep range, rasterized instead of ray-marched, with normal-consistency and
Laplacian regularisers. It writes into the run's refine/ folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import trimesh

from dreamlift.errors import UsageError
from dreamlift.guidance import GuidanceConfig
from dreamlift.render.mesh import mesh_covered_pixels, render_mesh
from dreamlift.render.output import CoveredPixels, RenderOutput, Shading
from dreamlift.render.raster import RasterizerConfig, use_nvdiffrast
from dreamlift.scene.background import Background, BackgroundConfig
from dreamlift.scene.cameras import Cameras
from dreamlift.scene.dmtet import DMTetConfig, DMTetGeometry
from dreamlift.scene.fields import FieldConfig, RadianceField
from dreamlift.scene.mesh_geometry import laplacian_smoothing, normal_consistency
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.nerf import NeRFScene
from dreamlift.text3d.scenes import Scene, parameter_groups
from dreamlift.text3d.solid import drop_floaters
from dreamlift.text3d.stages import Stage, build_optimizer
from dreamlift.text3d.surface import surface_volume


class MeshScene(Scene):
    """A DMTet surface whose albedo comes from a texture field (a :class:`RadianceField` of which only the albedo
    is used, so a stage-1 field carries over as is), in front of a background."""

    always_textured = True

    def __init__(
        self,
        field_config: FieldConfig,
        dmtet_config: DMTetConfig,
        rasterizer_config: RasterizerConfig,
        background_config: BackgroundConfig,
        device: torch.device,
    ):
        super().__init__()
        self.geometry = DMTetGeometry(dmtet_config, field_config.bound, device)
        self.texture = RadianceField(field_config, device)
        self.background = Background(background_config)
        self.rasterizer_config = rasterizer_config

    @property
    def bound(self) -> float:
        return self.geometry.bound

    def albedo(self, points: torch.Tensor) -> torch.Tensor:
        """Albedo N×3 of world points N×3."""
        return self.texture(points).albedo

    @torch.no_grad()
    def initialise_from(
        self, nerf: NeRFScene, target_sdf: Callable[[torch.Tensor], torch.Tensor], show_progress: bool = False
    ) -> float:
        """Start from a stage-1 NeRF: the texture field and background are copied, and the SDF is fitted to
        ``target_sdf`` (world points N×3 → N, negative inside), with +1 on the grid's outer faces so the first
        surface is closed. Returns the fit's error."""
        self.texture.load_state_dict(nerf.field.state_dict())
        self.background.load_state_dict(nerf.background.state_dict())
        bound = self.geometry.bound

        def target(points: torch.Tensor) -> torch.Tensor:
            sdf = target_sdf(points)
            on_boundary = (points.abs() >= bound - 1e-6).any(-1)
            return torch.where(on_boundary, torch.ones_like(sdf), sdf)

        with torch.enable_grad():
            return self.geometry.fit(target, show_progress=show_progress)

    def surface_mesh(self, config: ExportConfig) -> tuple[trimesh.Trimesh, dict]:
        """The DMTet mesh as it is, floaters dropped; nothing to record."""
        vertices, faces = self.geometry()
        mesh = trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy(), process=True)
        return drop_floaters(mesh, config.min_component_fraction), {}

    def covered_pixels(self, cameras: Cameras, size: int, min_opacity: float = 0.5) -> CoveredPixels:
        """See :func:`~dreamlift.render.mesh.mesh_covered_pixels` (a mesh covers a pixel wholly or not at all)."""
        vertices, faces = self.geometry()
        return mesh_covered_pixels(vertices, faces, self.albedo, self.background, cameras, size, self.rasterizer_config)

    def parameter_groups(self, lr_grid: float, lr_mlp: float, lr_background: float) -> list[dict]:
        modules = {
            "geometry_grid": self.geometry.encoding,
            "geometry_mlp": self.geometry.mlp,
            "texture_grid": self.texture.encoding,
            "texture_mlp": self.texture.mlp,
            "background": self.background,
        }
        rates = {"geometry_grid": lr_grid, "geometry_mlp": lr_mlp, "texture_grid": lr_grid, "texture_mlp": lr_mlp}
        return parameter_groups(modules, {**rates, "background": lr_background})

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
        """See :func:`render_mesh`; ``stratified`` and ``generator`` (volume sampling) do not apply."""
        vertices, faces = self.geometry()
        return render_mesh(
            vertices,
            faces,
            self.albedo,
            self.background,
            cameras,
            height,
            width,
            shading,
            light,
            self.rasterizer_config,
        )


class RefineStage(Stage):
    """Stage 2: a DMTet mesh with a texture field, rasterized, smoothed by normal consistency and Laplacian terms."""

    name = "refine"
    former_names = ("mesh",)
    title = "refine stage (DMTet)"
    progress_label = "text3d refine"
    takes_reference_views = False  # it starts from stage 1, which they held

    def check_device(self, device: torch.device) -> None:
        """nvdiffrast asked for where it cannot run is a UsageError
        (:func:`~dreamlift.render.raster.use_nvdiffrast`)."""
        use_nvdiffrast(self.config.refine.rasterizer, device)

    @property
    def steps(self) -> int:
        return self.config.refine.steps

    def make_optimizer(self, scene: MeshScene) -> torch.optim.Adam:
        o = self.config.refine.optim
        groups = scene.parameter_groups(o.lr_grid, o.lr_mlp, o.lr_background)
        return build_optimizer(groups, o)

    def resolution_at(self, step: int) -> int:
        return self.config.refine.resolution

    def guidance_config(self) -> GuidanceConfig:
        """The run's guidance with the stage's narrower timestep range (no annealing)."""
        r = self.config.refine
        return dataclasses.replace(self.config.guidance, t_min=r.t_min, t_max=r.t_max, t_max_final=r.t_max)

    def make_scene(self, device: torch.device) -> MeshScene:
        c, r = self.config, self.config.refine
        return MeshScene(c.field, r.dmtet, r.rasterizer, c.background, device).to(device)

    def start(self, scenes: list[Scene], start_from: list[NeRFScene] | None) -> list[dict]:
        """Fit each mesh scene to its stage-1 NeRF's export volume (:func:`surface_volume` with the export's
        settings and ``refine.threshold``: with ``export.solidify``, the cleaned solid the stage-1 mesh is made
        of), scaled to [−1, 1]; a NeRF with no surface there is a UsageError."""
        if start_from is None or len(start_from) != len(scenes):
            count = 0 if start_from is None else len(start_from)
            raise ValueError(f"the refine stage needs {len(scenes)} stage-1 scenes, got {count}")
        export = dataclasses.replace(self.config.export, threshold=self.config.refine.threshold)
        records = []
        for scene, nerf in zip(scenes, start_from, strict=True):
            nerf.eval()
            volume = surface_volume(nerf, export)
            threshold = volume.threshold
            error = scene.initialise_from(nerf, volume.normalised_sdf, show_progress=True)
            with torch.no_grad():
                if len(scene.geometry()[1]) == 0:
                    raise UsageError(
                        f"the NeRF has no surface at density {threshold:.3g} on a "
                        f"{scene.geometry.config.grid_resolution}³ grid, so there is no mesh to refine "
                        "(set refine.threshold lower, or refine.dmtet.grid_resolution higher)"
                    )
            records.append({"threshold": threshold, "fit_mse": round(error, 6)})
        return records

    def regularisation(
        self,
        scene: MeshScene,
        out: RenderOutput,
        progress: float,
        generator: torch.Generator,
        denoised: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r = self.config.refine
        loss = torch.zeros((), device=out.rgb.device)
        if out.mesh is None:  # an empty mesh renders no geometry to regularise
            return loss
        vertices, faces = out.mesh
        if r.normal_consistency > 0:
            loss = loss + r.normal_consistency * normal_consistency(vertices, faces)
        if r.laplacian > 0:
            loss = loss + r.laplacian * laplacian_smoothing(vertices, faces)
        return loss
