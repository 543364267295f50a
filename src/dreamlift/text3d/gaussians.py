"""The 3D Gaussians scene kind (DreamGaussian): Gaussians splatted, densified and pruned as they go, and their
stage-1 stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dreamlift.render.gaussians import covered_pixels, render_gaussians
from dreamlift.render.mesh import AlbedoFn
from dreamlift.render.output import CoveredPixels, RenderOutput, Shading
from dreamlift.render.splatting import SplattingConfig, use_gsplat
from dreamlift.render.volume import ray_aabb
from dreamlift.scene.background import Background, BackgroundConfig
from dreamlift.scene.cameras import Cameras, generate_rays, turntable_cameras
from dreamlift.scene.gaussian_ply import write_gaussian_ply
from dreamlift.scene.gaussians import PARAMETERS, GaussianConfig, Gaussians
from dreamlift.text3d.redraw import PriorRedraw
from dreamlift.text3d.scenes import VolumeScene, parameter_groups
from dreamlift.text3d.stages import FirstStage
from dreamlift.text3d.surface import sample_padded_grid
from dreamlift.text3d.surface_colours import RenderedColours


class GaussianScene(VolumeScene):
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

    def threshold_from_renders(self, padded: np.ndarray) -> float:
        """:func:`silhouette_threshold`."""
        return silhouette_threshold(self, padded)

    def surface_colour(self, redraw: PriorRedraw | None = None) -> AlbedoFn:
        """What the renders show (:class:`~dreamlift.text3d.surface_colours.RenderedColours`), redrawn by the prior
        with ``redraw``: Gaussians have no albedo field."""
        return super().surface_colour(redraw) if redraw is not None else RenderedColours(self)

    def write_extras(self, out_dir: Path) -> None:
        """The Gaussians themselves, as gaussians.ply in the 3DGS splat layout (y up)."""
        write_gaussian_ply(self.gaussians, out_dir / "gaussians.ply")

    def before_step(self, step: int, progress: float | None = None) -> None:
        """Nothing: densification follows the optimiser step (:class:`GaussianStage`)."""

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


class GaussianStage(FirstStage):
    """Stage 1 as 3D Gaussians (DreamGaussian): splatted, with a learning rate per parameter, the means' falling
    over the run, and densified and pruned every ``gaussians.model.densify_every`` steps (3DGS's rules)."""

    name = "gaussians"
    title = "Gaussians"

    def check_device(self, device: torch.device) -> None:
        """gsplat asked for where it cannot run is a UsageError (:func:`~dreamlift.render.splatting.use_gsplat`)."""
        use_gsplat(self.config.gaussians.splatting, device)

    def make_scene(self, device: torch.device) -> GaussianScene:
        c, g = self.config, self.config.gaussians
        return GaussianScene(g.model, g.splatting, g.surface_density, c.field.bound, c.background, device).to(device)

    def make_optimizer(self, scene: GaussianScene) -> torch.optim.Adam:
        o = self.config.gaussians.optim
        rates = {
            "means": o.lr_means,
            "log_scales": o.lr_scales,
            "quaternions": o.lr_quaternions,
            "opacity_logits": o.lr_opacities,
            "colour_logits": o.lr_colours,
            "background": o.lr_background,
        }
        return torch.optim.Adam(scene.parameter_groups(rates), betas=o.betas, eps=o.eps)

    def regularisation(
        self,
        scene: GaussianScene,
        out: RenderOutput,
        progress: float,
        generator: torch.Generator,
        denoised: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The render's terms only (:meth:`FirstStage.render_regularisation`): the field's (eikonal, normal
        smoothness, orientation) have no Gaussian counterpart."""
        return self.render_regularisation(out, progress, denoised)

    def after_step(
        self,
        scene: GaussianScene,
        optimizer: torch.optim.Adam,
        out: RenderOutput,
        step: int,
        generator: torch.Generator,
    ) -> dict | None:
        """Set the means' learning rate for the next step, add this step's view-space gradients to the statistics,
        and densify and prune on the schedule; returns the counts of a densification."""
        g = self.config.gaussians
        for group in optimizer.param_groups:
            if group["name"] == "means":
                group["lr"] = g.optim.means_rate(step / self.steps)
        if out.screen_means.grad is not None:
            scene.gaussians.record_gradients(out.screen_means.grad, out.radii, out.rgb.shape[-1])
        if step % g.model.densify_every == 0 and step <= g.model.densify_until * self.steps and step < self.steps:
            counts = scene.gaussians.densify_and_prune(optimizer, generator)
            return {"step": step, **counts, "count": len(scene.gaussians)}
        return None
