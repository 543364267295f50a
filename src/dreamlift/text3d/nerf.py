"""The NeRF scene kind: a hash-grid radiance field, ray-marched (DreamFusion), and its stage-1 stage."""

from __future__ import annotations

import numpy as np
import torch

from dreamlift.render.output import CoveredPixels, RenderOutput, Shading
from dreamlift.render.volume import OccupancyGrid, VolumeRenderer, VolumeRendererConfig, ray_aabb
from dreamlift.scene.background import Background, BackgroundConfig
from dreamlift.scene.cameras import Cameras, generate_rays, turntable_cameras
from dreamlift.scene.fields import FieldConfig, RadianceField, evaluate_in_chunks
from dreamlift.text3d.scenes import VolumeScene, parameter_groups
from dreamlift.text3d.stages import FirstStage, build_optimizer


class NeRFScene(VolumeScene):
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

    def threshold_from_renders(self, padded: np.ndarray) -> float:
        """:func:`auto_threshold` (``padded`` is not needed)."""
        return auto_threshold(self)

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
        """Groups ``grid``, ``mlp`` and ``background`` at their rates."""
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


@torch.no_grad()
def auto_threshold(scene: NeRFScene, views: int = 8, size: int = 64) -> float:
    """The density of a NeRF's surface read off its renders, for a field with no surface of its own: rays from
    ``views`` views around the object are marched at the renderer's step, and on each ray that becomes opaque the
    density where its transmittance first falls below ½ is noted; this is their median."""
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


class NeRFStage(FirstStage):
    """Stage 1: a NeRF, ray-marched, with DreamFusion's orientation penalty and optional opacity terms."""

    name = "nerf"
    title = "NeRF"
    starts_refine = True

    def make_optimizer(self, scene: NeRFScene) -> torch.optim.Adam:
        o = self.config.optim
        groups = scene.parameter_groups(o.lr_grid, o.lr_mlp, o.lr_background)
        return build_optimizer(groups, o)

    def make_scene(self, device: torch.device) -> NeRFScene:
        c = self.config
        return NeRFScene(c.field, c.renderer, c.background, device).to(device)

    def regularisation(
        self,
        scene: NeRFScene,
        out: RenderOutput,
        progress: float,
        generator: torch.Generator,
        denoised: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r = self.config.regularisers
        loss = self.render_regularisation(out, progress, denoised)
        if self.config.field.geometry == "sdf":
            loss = loss + self.sdf_regularisation(scene.field, generator, out.rgb.device)
        if out.backfacing is not None and r.orientation > 0:  # DreamFusion's orientation penalty
            loss = loss + r.orientation * out.backfacing.mean()
        return loss

    def sdf_regularisation(
        self, field: RadianceField, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        """An ``sdf`` field's terms: the eikonal term at random points of the scene cube, and the normal smoothness
        at those of them within 0.1 of the surface, moved onto it."""
        r = self.config.regularisers
        loss = torch.zeros((), device=device)
        if r.eikonal == 0 and r.normal_smoothness == 0:
            return loss
        bound = self.config.field.bound
        points = ((torch.rand(r.eikonal_points, 3, generator=generator) * 2 - 1) * bound).to(device)
        if r.eikonal > 0:
            loss = loss + r.eikonal * field.eikonal(points)
        if r.normal_smoothness > 0:
            surface = field.surface_points(points, band=0.1)
            if len(surface):
                offsets = torch.randn(len(surface), 3, generator=generator).to(device) * r.normal_smoothness_step
                loss = loss + r.normal_smoothness * field.normal_smoothness(surface, offsets)
        return loss
