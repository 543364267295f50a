"""The radiance field: hash-grid features → volume density and albedo.

Two geometries (``field.geometry``):

- ``density``: σ = softplus(raw + blob), with Magic3D's density blob at the centre as the initial shape. The
  surface is wherever the density ends up; SDS may leave it as semi-transparent fog.
- ``sdf``: the MLP gives a signed distance s (a sphere of radius ``sdf_radius`` at the start) and σ = Ψ_β(−s)/β,
  VolSDF's Laplace-CDF density (Yariv et al. 2021): opaque inside, clear outside, with a transition of width β
  (world units) around the level set s = 0. β falls over the run from ``sdf_beta[0]`` to ``sdf_beta[1]``, so the
  surface is sharp by construction and the exported mesh is its zero level set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dreamlift.scene.hashgrid import HashGridConfig, make_hash_grid


@dataclass
class FieldConfig:
    """Density and albedo field over the cube [−bound, bound]³."""

    hashgrid: HashGridConfig = field(default_factory=HashGridConfig)
    bound: float = 1.0
    """Half-size of the scene cube (world units); the field is empty outside it."""
    hidden_dim: int = 64
    """Width of the MLP after the encoding."""
    hidden_layers: int = 1
    """Hidden layers of that MLP."""
    blob_density: float = 10.0
    """Density added at the centre by the initial blob (Magic3D): blob_density·(1 − r / blob_radius)."""
    blob_radius: float = 0.5
    """Radius (world units) at which the blob's added density reaches zero."""
    geometry: Literal["density", "sdf"] = "density"
    """``density``: softplus(raw + blob); ``sdf``: a signed distance turned into VolSDF's density (see above)."""
    sdf_radius: float = 0.5
    """``sdf``: radius (world units) of the sphere the signed distance starts as."""
    sdf_beta: tuple[float, float] = (0.1, 0.002)
    """``sdf``: width β (world units) of the surface's transition at the start and at the end of the run; it falls
    geometrically in between. A wide β lets the early, coarse shape move; a sharp one leaves no half-transparent
    band at the silhouette (at 0.02, 10 pixels of a 256-pixel render; at 0.002, under one). A surface sharper than
    the ray step is still caught, by the first sample inside it; a shell thinner than the step can be missed."""
    start_levels: int | None = None
    """Coarse to fine (Neuralangelo's progressive hash grid): only the ``start_levels`` coarsest hash-grid levels
    feed the MLP at the start of the run, and the finer ones are switched on one at a time, evenly, until all are
    on at ``all_levels_at``: a coarse grid moves whole regions at once, and the fine levels add detail later.
    None: every level from the start. (With the embedded prior it did not open a torus's hole on its own, and it
    made no difference with carving, so the presets leave it off.)"""
    all_levels_at: float = 0.5
    """Share of the run (0–1, exclusive) by which every hash-grid level is on, when ``start_levels`` is set."""

    def __post_init__(self):
        if self.bound <= 0 or self.blob_radius <= 0 or self.hidden_dim < 1 or self.hidden_layers < 0:
            raise ValueError("bound, blob_radius and hidden_dim must be positive and hidden_layers >= 0")
        if self.sdf_radius <= 0 or min(self.sdf_beta) <= 0:
            raise ValueError("sdf_radius and both sdf_beta values must be > 0")
        if self.start_levels is not None and not 1 <= self.start_levels <= self.hashgrid.num_levels:
            raise ValueError("start_levels must lie in [1, hashgrid.num_levels]")
        if not 0 < self.all_levels_at < 1:
            raise ValueError("all_levels_at must lie in (0, 1)")


def make_mlp(in_dim: int, hidden_dim: int, hidden_layers: int, out_dim: int) -> nn.Sequential:
    """Linear layers with SiLU between them: in_dim → hidden_dim (× hidden_layers) → out_dim."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden_dim), nn.SiLU()]
        width = hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def evaluate_in_chunks(
    fn: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor, chunk: int = 65536
) -> torch.Tensor:
    """``fn`` (points n×3 → n×…) over points N×3, ``chunk`` points at a time to bound memory; returns N×…."""
    return torch.cat([fn(part) for part in points.split(chunk)])


def cell_centres(resolution: int, bound: float, device: torch.device | None = None) -> torch.Tensor:
    """Centres (resolution³×3, x slowest, float32) of the cells of a resolution³ grid over [−bound, bound]³."""
    axis = (torch.arange(resolution, dtype=torch.float32, device=device) + 0.5) / resolution * 2 * bound - bound
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)


@dataclass
class FieldOutput:
    """Per-point field values for N points: density N (1/world unit), albedo N×3 in [0, 1], normal N×3 or None."""

    density: torch.Tensor
    albedo: torch.Tensor
    normal: torch.Tensor | None = None


class RadianceField(nn.Module):
    """Points N×3 (world) → :class:`FieldOutput`. Normals, when asked for, are ∇s/‖∇s‖ (``sdf``) or −∇σ/‖∇σ‖ by
    autograd."""

    def __init__(self, config: FieldConfig, device: torch.device):
        super().__init__()
        self.config = config
        self.encoding = make_hash_grid(config.hashgrid, device)
        self.mlp = make_mlp(self.encoding.output_dim, config.hidden_dim, config.hidden_layers, 4)
        if config.geometry == "sdf":
            self.register_buffer("beta", torch.tensor(config.sdf_beta[0]))  # the current β, saved with the field
        # 1 for each encoding output of a hash-grid level in use, 0 for the others (coarse to fine). Not saved: each
        # training step sets it, and a field outside a training run (export, a loaded texture) uses every level.
        self.register_buffer("level_mask", torch.ones(self.encoding.output_dim), persistent=False)

    def blob(self, points: torch.Tensor) -> torch.Tensor:
        """The initial density bias (N) at world points N×3."""
        c = self.config
        return c.blob_density * (1 - points.norm(dim=-1) / c.blob_radius)

    def set_progress(self, progress: float) -> None:
        """Set the schedules for a point of training (progress 0–1): the hash-grid levels in use (coarse to fine)
        and, for ``sdf``, β, geometrically from start to end."""
        c = self.config
        progress = min(max(progress, 0.0), 1.0)
        if c.start_levels is not None:
            finer = c.hashgrid.num_levels - c.start_levels
            levels = c.start_levels + min(finer, int(finer * progress / c.all_levels_at))
            self.level_mask.zero_()[: levels * c.hashgrid.features_per_level] = 1.0
        if c.geometry == "sdf":
            start, end = c.sdf_beta
            self.beta.fill_(start * (end / start) ** progress)

    def _raw(self, points: torch.Tensor) -> torch.Tensor:
        unit = ((points / self.config.bound + 1) / 2).clamp(0, 1)
        features = self.encoding(unit)
        if self.config.start_levels is not None:  # coarse to fine: only the levels in use
            features = features * self.level_mask
        return self.mlp(features)

    def _distance(self, raw: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return raw[:, 0] + points.norm(dim=-1) - self.config.sdf_radius

    def signed_distance(self, points: torch.Tensor) -> torch.Tensor:
        """``sdf``: the signed distance s (N, world units, negative inside) at world points N×3."""
        return self._distance(self._raw(points), points)

    def surface_density(self) -> float | None:
        """``sdf``: the density at the level set s = 0, Ψ_β(0)/β = 1/(2β); None for the ``density`` geometry."""
        return 0.5 / self.beta.item() if self.config.geometry == "sdf" else None

    def _activate(self, raw: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The MLP's raw outputs N×4 at world points N×3 → density N and albedo N×3."""
        if self.config.geometry == "density":
            return F.softplus(raw[:, 0] + self.blob(points)), torch.sigmoid(raw[:, 1:])
        sdf = self._distance(raw, points)
        half = 0.5 * torch.exp(-sdf.abs() / self.beta)
        return torch.where(sdf > 0, half, 1 - half) / self.beta, torch.sigmoid(raw[:, 1:])

    def forward(self, points: torch.Tensor, with_normals: bool = False) -> FieldOutput:
        if not with_normals:
            return FieldOutput(*self._activate(self._raw(points), points))
        # The normal needs ∇σ even under no_grad; it stays differentiable (double backward) when grads are on.
        outer_grad = torch.is_grad_enabled()
        with torch.enable_grad():
            points = points if points.requires_grad else points.detach().requires_grad_(True)
            raw = self._raw(points)
            density, albedo = self._activate(raw, points)
            # Outward: up the signed distance, down the density (whose gradient vanishes away from a sharp surface).
            rising = self._distance(raw, points) if self.config.geometry == "sdf" else -density
            gradient = torch.autograd.grad(rising.sum(), points, create_graph=outer_grad)[0]
        if not outer_grad:
            density, albedo = density.detach(), albedo.detach()
        return FieldOutput(density, albedo, F.normalize(gradient, dim=-1))

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """Density only (N), for occupancy updates and mesh export."""
        return self.forward(points).density

    def _distance_and_gradient(self, points: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``sdf``: s (N) and ∇s (N×3) at world points N×3 (detached from them); ``create_graph`` keeps ∇s
        differentiable in the field's parameters."""
        with torch.enable_grad():
            points = points.detach().requires_grad_(True)
            distance = self.signed_distance(points)
            gradient = torch.autograd.grad(distance.sum(), points, create_graph=create_graph)[0]
        return distance, gradient

    def surface_points(self, points: torch.Tensor, band: float) -> torch.Tensor:
        """``sdf``: world points N×3 moved onto the level set by one Newton step x − s·∇s/‖∇s‖² (detached); of
        the points within ``band`` (world units) of it, the M×3 that land on it."""
        distance, gradient = self._distance_and_gradient(points, create_graph=False)
        distance = distance.detach()
        near = distance.abs() < band
        step = distance[near, None] * gradient[near] / gradient[near].square().sum(-1, keepdim=True)
        return (points.detach()[near] - step).clamp(-self.config.bound, self.config.bound)

    def normal_smoothness(self, points: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """``sdf``: the mean ‖n(x) − n(x + o)‖ over points N×3 and offsets N×3 (world units; differentiable):
        the change of the surface normal across a small step, which bumps raise and flat faces keep at zero
        (threestudio's 3D normal smoothness; the unsquared norm leaves a few sharp edges cheap)."""
        _, gradient = self._distance_and_gradient(torch.cat([points, points + offsets]), create_graph=True)
        normal, shifted = F.normalize(gradient, dim=-1).chunk(2)
        return (normal - shifted).norm(dim=-1).mean()

    def eikonal(self, points: torch.Tensor) -> torch.Tensor:
        """``sdf``: the mean of (‖∇s‖ − 1)² at world points N×3 (differentiable): keeps s a distance."""
        _, gradient = self._distance_and_gradient(points, create_graph=True)
        return ((gradient.norm(dim=-1) - 1) ** 2).mean()
