"""Volume rendering of a radiance field with occupancy-grid empty-space skipping, built on nerfacc.

Rays march through the scene cube at a fixed step δ; an occupancy grid (nerfacc's ``OccGridEstimator``, updated
from the field's density every few steps, or for a signed-distance field set to the band around its surface where
samples can be seen) tells which cells are empty, and samples there are skipped.

- On CUDA, nerfacc's ``OccGridEstimator.sampling`` produces packed samples (CUDA kernels).
- On the CPU, where those kernels do not exist, :func:`dense_samples` does the same in PyTorch: each ray gets
  samples at t_near + (i + u)·δ inside the cube (u one stratified offset per ray), and samples in empty cells
  are masked out, so only occupied samples reach the field.

Either way the weights and sums come from nerfacc's ``render_weight_from_density`` and
``accumulate_along_rays`` (packed with ray indices on CUDA, batched rays × samples on the CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import nerfacc
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from dreamlift.errors import UsageError
from dreamlift.render.output import RenderOutput, Shading
from dreamlift.render.shading import shade
from dreamlift.scene.cameras import Cameras, generate_rays
from dreamlift.scene.fields import RadianceField, cell_centres, evaluate_in_chunks


@dataclass
class VolumeRendererConfig:
    """Volume rendering settings."""

    num_samples: int = 96
    """Samples along the cube's diagonal; sets the step δ = 2·√3·bound / num_samples."""
    occupancy_resolution: int = 32
    """Cells per side of the occupancy grid."""
    occupancy_threshold: float = 0.01
    """A cell is occupied when its opacity σ·δ exceeds this (or the grid's mean, if smaller)."""
    occupancy_update_every: int = 16
    """Steps between occupancy updates (every step during warm-up)."""
    occupancy_warmup_steps: int = 256
    """Steps during which every cell is re-evaluated at each update."""
    sampler: Literal["auto", "torch", "nerfacc"] = "auto"
    """``auto``: nerfacc's CUDA sampler on CUDA, the PyTorch sampler on the CPU."""
    normal_weight_threshold: float = 1e-3
    """Shaded renders compute normals (a double backward) only at samples whose weight exceeds this."""
    ray_chunk: int = 16384
    """Rays marched at once (a 128² render). Larger renders go chunk by chunk and, when training, recompute each
    chunk's samples in the backward pass instead of keeping them: a 512² render's samples, hash-grid lookups
    and double-backward normals would not fit in memory otherwise."""

    def __post_init__(self):
        if self.num_samples < 2 or self.occupancy_resolution < 1 or self.occupancy_update_every < 1:
            raise ValueError("num_samples >= 2, occupancy_resolution >= 1 and occupancy_update_every >= 1 are required")
        if self.ray_chunk < 1:
            raise ValueError("ray_chunk must be >= 1")


def ray_aabb(origins: torch.Tensor, directions: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances (each R) of rays R×3 through the cube [−bound, bound]³; exit < entry: a miss."""
    inv = 1.0 / torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0 = (-bound - origins) * inv
    t1 = (bound - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=0)
    t_far = torch.maximum(t0, t1).amin(dim=-1)
    return t_near, t_far


class OccupancyGrid(nn.Module):
    """nerfacc's ``OccGridEstimator`` over the scene cube, plus a PyTorch lookup for CPU sampling."""

    def __init__(self, config: VolumeRendererConfig, bound: float):
        super().__init__()
        self.config, self.bound = config, bound
        self.step_size = 2 * math.sqrt(3) * bound / config.num_samples
        aabb = torch.tensor([-bound] * 3 + [bound] * 3)
        self.estimator = nerfacc.OccGridEstimator(roi_aabb=aabb, resolution=config.occupancy_resolution, levels=1)

    def update(self, step: int, field: RadianceField) -> None:
        """Refresh occupancy from the field's density (on nerfacc's schedule)."""
        c = self.config
        self.estimator.update_every_n_steps(
            step,
            occ_eval_fn=lambda x: field.density(x) * self.step_size,
            occ_thre=c.occupancy_threshold,
            warmup_steps=c.occupancy_warmup_steps,
            n=c.occupancy_update_every,
        )

    def update_surface_band(self, step: int, field: RadianceField) -> None:
        """Occupancy of an ``sdf`` field: its :meth:`surface_band`, every ``occupancy_update_every`` steps."""
        if step % self.config.occupancy_update_every == 0:
            self.estimator.binaries = self.surface_band(field)[None]

    @torch.no_grad()
    def surface_band(self, field: RadianceField) -> torch.Tensor:
        """The cells (bool res³, indexed [x, y, z]) where an ``sdf`` field's samples can contribute to a render.

        Outside the level set, VolSDF's density falls as e^(−s/β): beyond 8β a sample's opacity is negligible.
        Inside, a ray has crossed the surface within one step δ and is opaque 8β later; deeper samples are hidden.
        With s a distance (the eikonal term), s differs from its value at a cell's centre by at most the cell's
        half-diagonal h anywhere in it; the band allows 2h for a gradient norm above 1. Early, while β is large,
        the band holds the whole interior; as β falls only a shell around the surface is sampled.
        """
        resolution = self.config.occupancy_resolution
        centres = cell_centres(resolution, self.bound, field.beta.device)
        distance = evaluate_in_chunks(field.signed_distance, centres).reshape(resolution, resolution, resolution)
        reach = math.sqrt(3) * 2 * self.bound / resolution + 8 * field.beta.item()
        return (distance < reach) & (distance > -(reach + self.step_size))

    def occupied(self, points: torch.Tensor) -> torch.Tensor:
        """Whether each point (…×3, inside the cube) lies in an occupied cell (bool …)."""
        resolution = self.config.occupancy_resolution
        cell = ((points + self.bound) / (2 * self.bound) * resolution).long().clamp(0, resolution - 1)
        return self.estimator.binaries[0, cell[..., 0], cell[..., 1], cell[..., 2]]


def stratified_offsets(
    rays: int, stratified: bool, generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """Where in its step each ray's samples sit (R×1, in [0, 1)): random per ray when ``stratified``, else ½."""
    if stratified:
        return torch.rand(rays, 1, generator=generator).to(like)
    return torch.full((rays, 1), 0.5).to(like)


def dense_samples(
    origins: torch.Tensor, directions: torch.Tensor, offsets: torch.Tensor, grid: OccupancyGrid
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyTorch counterpart of ``OccGridEstimator.sampling`` in the batched layout: rays R×3 (origins and
    directions), each with its offset in the step (R×1, :func:`stratified_offsets`).

    Returns t_starts, t_ends (each R×S) and a mask R×S of samples inside the cube in occupied cells.
    """
    step = grid.step_size
    t_near, t_far = ray_aabb(origins, directions, grid.bound)
    index = torch.arange(grid.config.num_samples, device=origins.device, dtype=origins.dtype)
    t_mid = t_near[:, None] + (index[None] + offsets) * step
    inside = t_mid < t_far[:, None]
    points = origins[:, None] + t_mid[..., None] * directions[:, None]
    mask = inside & grid.occupied(points)
    return t_mid - step / 2, t_mid + step / 2, mask


@dataclass
class RayOutput:
    """Per-ray sums for R rays, before the background: rgb R×3, opacity, depth and optical depth R×1, normal
    R×3 and backfacing R×1 (shaded renders; None otherwise), and samples, how many samples reached the field."""

    rgb: torch.Tensor
    opacity: torch.Tensor
    depth: torch.Tensor
    optical_depth: torch.Tensor
    normal: torch.Tensor | None
    backfacing: torch.Tensor | None
    samples: int


def concatenate(chunks: list[RayOutput]) -> RayOutput:
    """The rays of several :class:`RayOutput`, in order."""
    if len(chunks) == 1:
        return chunks[0]

    def cat(name: str) -> torch.Tensor | None:
        values = [getattr(chunk, name) for chunk in chunks]
        return None if values[0] is None else torch.cat(values)

    names = ("rgb", "opacity", "depth", "optical_depth", "normal", "backfacing")
    return RayOutput(*(cat(name) for name in names), sum(chunk.samples for chunk in chunks))


class VolumeRenderer:
    """Renders a :class:`RadianceField` from cameras; the background module fills what the field leaves open."""

    def __init__(self, config: VolumeRendererConfig, grid: OccupancyGrid):
        self.config, self.grid = config, grid

    def use_nerfacc_sampler(self, device: torch.device) -> bool:
        if self.config.sampler == "auto":
            return device.type == "cuda"
        if self.config.sampler == "nerfacc" and device.type != "cuda":
            raise UsageError(
                "renderer.sampler=nerfacc needs CUDA (nerfacc's occupancy-grid sampling has no CPU kernels)"
            )
        return self.config.sampler == "nerfacc"

    def render(
        self,
        field: RadianceField,
        background: nn.Module,
        cameras: Cameras,
        height: int,
        width: int,
        shading: Shading = "albedo",
        light: tuple[torch.Tensor, torch.Tensor] | None = None,
        stratified: bool = False,
        generator: torch.Generator | None = None,
    ) -> RenderOutput:
        """Render B cameras at H×W. ``light`` (directions B×3, ambient B) is needed for the shaded modes.

        More than ``ray_chunk`` rays are marched a chunk at a time; with gradients on, each chunk is
        checkpointed (its samples are recomputed in the backward pass), so memory follows the chunk.
        """
        batch = len(cameras)
        origins, directions = generate_rays(cameras, height, width)
        origins, directions = origins.reshape(-1, 3), directions.reshape(-1, 3)
        rays = origins.shape[0]
        ray_image = torch.arange(batch, device=origins.device).repeat_interleave(height * width)
        # Drawn once for all rays, so that a checkpointed chunk's recomputation samples the same points.
        offsets = None
        if not self.use_nerfacc_sampler(origins.device):
            offsets = stratified_offsets(rays, stratified, generator, origins)

        chunk = self.config.ray_chunk
        checkpointed = rays > chunk and torch.is_grad_enabled()
        chunks = []
        for start in range(0, rays, chunk):
            part = slice(start, start + chunk)
            arguments = (field, origins[part], directions[part], ray_image[part])
            arguments += (None if offsets is None else offsets[part], stratified, shading, light)
            if checkpointed:
                chunks.append(checkpoint(self.march, *arguments, use_reentrant=False))
            else:
                chunks.append(self.march(*arguments))
        out = concatenate(chunks)

        bg = background(directions.reshape(batch, height, width, 3)).reshape(-1, 3)
        rgb = out.rgb + (1 - out.opacity) * bg

        def image(values: torch.Tensor | None) -> torch.Tensor | None:
            return None if values is None else values.reshape(batch, height, width, -1).permute(0, 3, 1, 2)

        return RenderOutput(
            image(rgb),
            image(out.opacity),
            image(out.depth),
            image(out.normal),
            image(out.backfacing),
            out.samples,
            optical_depth=image(out.optical_depth),
        )

    def march(
        self,
        field: RadianceField,
        origins: torch.Tensor,
        directions: torch.Tensor,
        ray_image: torch.Tensor,
        offsets: torch.Tensor | None,
        stratified: bool,
        shading: Shading,
        light: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> RayOutput:
        """Sample R rays (origins and directions R×3; ray_image R, each ray's camera in the batch; offsets R×1
        for the PyTorch sampler, None for nerfacc's), query the field and sum along each ray."""
        rays = origins.shape[0]
        with_normals = shading != "albedo"

        if offsets is None:
            ray_indices, t_starts, t_ends = self.grid.estimator.sampling(
                origins, directions, render_step_size=self.grid.step_size, stratified=stratified
            )
            sample_rays = ray_indices
            mask = None
        else:
            t_starts, t_ends, mask = dense_samples(origins, directions, offsets, self.grid)
            ray_indices = None
            sample_rays = torch.arange(rays, device=origins.device)[:, None].expand_as(mask)[mask]

        t_mid = (t_starts + t_ends) / 2
        mid_selected = t_mid if mask is None else t_mid[mask]
        points = origins[sample_rays] + mid_selected[:, None] * directions[sample_rays]
        out = field(points)

        def scatter(values: torch.Tensor) -> torch.Tensor:
            """Per-sample values → the sampling layout (packed as is, or zero-filled R×S×…)."""
            if mask is None:
                return values
            dense = values.new_zeros(*mask.shape, *values.shape[1:])
            dense[mask] = values
            return dense

        sigmas = scatter(out.density)
        weights, _, _ = nerfacc.render_weight_from_density(
            t_starts, t_ends, sigmas, ray_indices=ray_indices, n_rays=rays if ray_indices is not None else None
        )

        def accumulate(values: torch.Tensor | None, w: torch.Tensor = weights) -> torch.Tensor:
            """Σ_i w_i·v_i per ray (R×C); Σ_i w_i when values is None."""
            if ray_indices is None:
                return nerfacc.accumulate_along_rays(w, values)
            return nerfacc.accumulate_along_rays(w, values, ray_indices=ray_indices, n_rays=rays)

        colour, normal, backfacing = out.albedo, None, None
        if with_normals:
            sample_weights = weights if mask is None else weights[mask]
            surface = sample_weights.detach() > self.config.normal_weight_threshold
            normal = torch.zeros_like(points)
            normal[surface] = field(points[surface], with_normals=True).normal
            colour = shade(colour, normal, shading, light, ray_image[sample_rays])
            # Σ sg(w_i)·max(0, n_i·d)² per ray (what DreamFusion's orientation penalty averages): with the weights
            # held, its gradient turns normals, not weights.
            facing_away = (normal * directions[sample_rays]).sum(-1, keepdim=True).clamp(min=0) ** 2
            backfacing = accumulate(scatter(facing_away), weights.detach())
            normal = accumulate(scatter(normal))
        return RayOutput(
            rgb=accumulate(scatter(colour)),
            opacity=accumulate(None),
            depth=accumulate(t_mid[..., None]),
            optical_depth=accumulate(None, sigmas * (t_ends - t_starts)),
            normal=normal,
            backfacing=backfacing,
            samples=int(points.shape[0]),
        )
