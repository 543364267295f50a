"""The radiance field: hash-grid features → volume density and albedo, with a density-blob initialisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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

    def __post_init__(self):
        if self.bound <= 0 or self.blob_radius <= 0 or self.hidden_dim < 1 or self.hidden_layers < 0:
            raise ValueError("bound, blob_radius and hidden_dim must be positive and hidden_layers >= 0")


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


@dataclass
class FieldOutput:
    """Per-point field values for N points: density N (1/world unit), albedo N×3 in [0, 1], normal N×3 or None."""

    density: torch.Tensor
    albedo: torch.Tensor
    normal: torch.Tensor | None = None


class RadianceField(nn.Module):
    """Points N×3 (world) → :class:`FieldOutput`. Normals, when asked for, are −∇σ/‖∇σ‖ by autograd."""

    def __init__(self, config: FieldConfig, device: torch.device):
        super().__init__()
        self.config = config
        self.encoding = make_hash_grid(config.hashgrid, device)
        self.mlp = make_mlp(self.encoding.output_dim, config.hidden_dim, config.hidden_layers, 4)

    def blob(self, points: torch.Tensor) -> torch.Tensor:
        """The initial density bias (N) at world points N×3."""
        c = self.config
        return c.blob_density * (1 - points.norm(dim=-1) / c.blob_radius)

    def _evaluate(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        unit = ((points / self.config.bound + 1) / 2).clamp(0, 1)
        raw = self.mlp(self.encoding(unit))
        return F.softplus(raw[:, 0] + self.blob(points)), torch.sigmoid(raw[:, 1:])

    def forward(self, points: torch.Tensor, with_normals: bool = False) -> FieldOutput:
        if not with_normals:
            return FieldOutput(*self._evaluate(points))
        # The normal needs ∇σ even under no_grad; it stays differentiable (double backward) when grads are on.
        outer_grad = torch.is_grad_enabled()
        with torch.enable_grad():
            points = points if points.requires_grad else points.detach().requires_grad_(True)
            density, albedo = self._evaluate(points)
            gradient = torch.autograd.grad(density.sum(), points, create_graph=outer_grad)[0]
        if not outer_grad:
            density, albedo = density.detach(), albedo.detach()
        return FieldOutput(density, albedo, -F.normalize(gradient, dim=-1))

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """Density only (N), for occupancy updates and mesh export."""
        return self.forward(points).density
