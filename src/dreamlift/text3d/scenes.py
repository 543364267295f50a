"""The optimised 3D model of a text3d run, rendered with its background: a NeRF or 3D Gaussians (stage 1), or a
DMTet mesh with a texture field (stage 2, Magic3D). All render with the same call and hand their parameters to
the optimiser in named groups; a scene's state dict is the whole 3D model. The stage-1 scenes also describe a
density (``density``, ``bound``, ``surface_density``) from which the export meshes their surface."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dreamlift.render.gaussians import covered_pixels, render_gaussians
from dreamlift.render.mesh import mesh_covered_pixels, render_mesh
from dreamlift.render.output import CoveredPixels, RenderOutput, Shading
from dreamlift.render.raster import RasterizerConfig
from dreamlift.render.splatting import SplattingConfig
from dreamlift.render.volume import OccupancyGrid, VolumeRenderer, VolumeRendererConfig
from dreamlift.scene.background import Background, BackgroundConfig
from dreamlift.scene.cameras import Cameras, generate_rays
from dreamlift.scene.dmtet import DMTetConfig, DMTetGeometry
from dreamlift.scene.fields import FieldConfig, RadianceField
from dreamlift.scene.gaussians import PARAMETERS, GaussianConfig, Gaussians


def parameter_groups(modules: dict[str, nn.Module], learning_rates: dict[str, float]) -> list[dict]:
    """Adam parameter groups, one per named module that has parameters; ``learning_rates`` maps each name to
    its rate."""
    groups = []
    for name, module in modules.items():
        params = list(module.parameters())
        if params:
            groups.append({"params": params, "lr": learning_rates[name], "name": name})
    return groups


class NeRFScene(nn.Module):
    """A radiance field in [−bound, bound]³ in front of a background."""

    def __init__(
        self,
        field_config: FieldConfig,
        renderer_config: VolumeRendererConfig,
        background_config: BackgroundConfig,
        device: torch.device,
    ):
        super().__init__()
        self.field = RadianceField(field_config, device)
        self.background = Background(background_config)
        self.grid = OccupancyGrid(renderer_config, field_config.bound)
        self.renderer = VolumeRenderer(renderer_config, self.grid)

    @property
    def bound(self) -> float:
        """Half the side of the scene cube (world units)."""
        return self.field.config.bound

    def albedo(self, points: torch.Tensor) -> torch.Tensor:
        """Albedo N×3 of world points N×3."""
        return self.field(points).albedo

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """Density N (1/world unit) at world points N×3."""
        return self.field.density(points)

    def surface_density(self) -> float | None:
        """The density of the field's own surface (an SDF field's zero level set), or None."""
        return self.field.surface_density()

    def before_step(self, step: int, progress: float | None = None) -> None:
        """Set the field's schedule (``sdf``: β) to ``progress`` (0–1; None keeps it) and refresh the occupancy
        grid (on its own schedule): an ``sdf`` field's surface band, or a ``density`` field's occupied cells."""
        if progress is not None:
            self.field.set_progress(progress)
        if self.field.config.geometry == "sdf":
            self.grid.update_surface_band(step, self.field)
        else:
            self.grid.update(step, self.field)

    @torch.no_grad()
    def covered_pixels(self, cameras: Cameras, size: int, min_opacity: float = 0.5) -> CoveredPixels:
        """The pixels of albedo renders from B cameras at size×size that the field covers at least
        ``min_opacity``, and what they show there (:class:`~dreamlift.render.output.CoveredPixels`; a pixel's
        point lies at its expected ray distance)."""
        out = self.render(cameras, size, size)
        opacity = out.opacity.permute(0, 2, 3, 1)  # B×S×S×1
        origins, directions = generate_rays(cameras, size, size)
        points = origins + directions * out.depth.permute(0, 2, 3, 1) / opacity.clamp(min=1e-6)
        background = self.background(directions)
        albedo = (out.rgb.permute(0, 2, 3, 1) - (1 - opacity) * background) / opacity.clamp(min=1e-6)
        mask = opacity[..., 0] >= min_opacity
        return CoveredPixels(mask, points[mask], albedo[mask].clamp(0, 1), out.rgb)

    def parameter_groups(self, lr_grid: float, lr_mlp: float, lr_background: float) -> list[dict]:
        modules = {"grid": self.field.encoding, "mlp": self.field.mlp, "background": self.background}
        return parameter_groups(modules, {"grid": lr_grid, "mlp": lr_mlp, "background": lr_background})

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
        """See :meth:`VolumeRenderer.render`."""
        return self.renderer.render(
            self.field, self.background, cameras, height, width, shading, light, stratified, generator
        )


class GaussianScene(nn.Module):
    """3D Gaussians in front of a background, in the scene cube [−bound, bound]³ (which only the export reads)."""

    def __init__(
        self,
        gaussian_config: GaussianConfig,
        splatting_config: SplattingConfig,
        surface_density: float | None,
        bound: float,
        background_config: BackgroundConfig,
        device: torch.device,
    ):
        super().__init__()
        self.gaussians = Gaussians(gaussian_config).to(device)  # drawn from torch's global generator
        self.background = Background(background_config)
        self.splatting_config, self.bound, self._surface_density = splatting_config, bound, surface_density

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """Density N (Σ opacity · Gaussian, unitless) at world points N×3."""
        return self.gaussians.density(points)

    def surface_density(self) -> float | None:
        """The density of the exported surface, as configured (``gaussians.surface_density``); None: the export
        reads it off the renders' silhouettes."""
        return self._surface_density

    def before_step(self, step: int, progress: float | None = None) -> None:
        """Nothing: densification follows the optimiser step (:class:`~dreamlift.text3d.stages.GaussianStage`)."""

    def covered_pixels(self, cameras: Cameras, size: int, min_opacity: float = 0.5) -> CoveredPixels:
        """See :func:`~dreamlift.render.gaussians.covered_pixels`."""
        return covered_pixels(self.gaussians, self.background, cameras, size, self.splatting_config, min_opacity)

    def parameter_groups(self, learning_rates: dict[str, float]) -> list[dict]:
        """One group per Gaussian parameter (:data:`~dreamlift.scene.gaussians.PARAMETERS`) and the background's;
        ``learning_rates`` maps each of these names to its rate."""
        modules = {name: [getattr(self.gaussians, name)] for name in PARAMETERS}
        groups = [{"params": params, "lr": learning_rates[name], "name": name} for name, params in modules.items()]
        return groups + parameter_groups({"background": self.background}, learning_rates)

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
        """See :func:`render_gaussians`; ``stratified`` and ``generator`` (volume sampling) do not apply."""
        return render_gaussians(
            self.gaussians, self.background, cameras, height, width, shading, light, self.splatting_config
        )


class MeshScene(nn.Module):
    """A DMTet surface whose albedo comes from a texture field (a :class:`RadianceField` of which only the albedo
    is used, so a stage-1 field carries over as is), in front of a background."""

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

    def before_step(self, step: int, progress: float | None = None) -> None:
        """Nothing: the mesh is extracted afresh at every render."""

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


Scene = NeRFScene | GaussianScene | MeshScene
"""What a stage optimises."""
