"""3D Gaussians as an optimised scene (3D Gaussian splatting; DreamGaussian for text to 3D): their parameters
and start, the density field they describe (the export meshes it), and densification.

Each Gaussian has a mean (world units), three log standard deviations along its axes, a rotation (a quaternion,
w first, normalised when used), an opacity logit and an albedo logit (RGB). The parameters keep their identity
for the whole run: densification replaces their data and resizes the optimiser's moments in place, so the
optimiser, checkpoints and resumption see one parameter per kind, whatever the count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GaussianConfig:
    """How many Gaussians there are, how they start, and when they are split, cloned and pruned (3DGS's rules
    with DreamGaussian's settings unless said otherwise)."""

    count: int = 5000
    """Gaussians at the start, uniformly in a ball of ``init_radius`` around the origin."""
    init_radius: float = 0.5
    """Radius of the starting ball (world units; the scene lives in [−1, 1]³)."""
    init_opacity: float = 0.1
    """Opacity of every starting Gaussian."""
    max_count: int = 60000
    """Densification stops adding Gaussians past this count."""
    densify_every: int = 50
    """Steps between densifications (3DGS: clone and split where the view-space gradient is large, then prune)."""
    densify_until: float = 1.0
    """Share of the run (0–1) after which the count no longer changes."""
    grad_threshold: float = 0.01
    """Mean norm of a Gaussian's view-space gradient (in normalised device coordinates, as 3DGS measures it)
    above which it is cloned (when small) or split (when large)."""
    split_size: float = 0.04
    """Largest standard deviation (world units) up to which a Gaussian is cloned; above it, it is split in two
    of 1/1.6 its size (3DGS: percent_dense × scene extent, DreamGaussian 0.01 × 4)."""
    min_opacity: float = 0.01
    """Gaussians of lower opacity are pruned at each densification."""
    max_size: float = 0.4
    """Gaussians whose largest standard deviation exceeds this (world units) are pruned."""

    def __post_init__(self):
        if self.count < 1 or self.max_count < self.count:
            raise ValueError(f"gaussians.count must be >= 1 and <= max_count, got {self.count}")
        if self.densify_every < 1:
            raise ValueError(f"gaussians.densify_every must be >= 1, got {self.densify_every}")
        if not 0 < self.init_opacity < 1 or self.init_radius <= 0:
            raise ValueError("gaussians.init_opacity must lie in (0, 1) and init_radius be > 0")
        if not 0 <= self.densify_until <= 1 or self.grad_threshold <= 0 or self.split_size <= 0:
            raise ValueError("gaussians.densify_until must lie in [0, 1], grad_threshold and split_size be > 0")
        if not 0 <= self.min_opacity < 1 or self.max_size <= 0:
            raise ValueError("gaussians.min_opacity must lie in [0, 1) and max_size be > 0")


PARAMETERS = ("means", "log_scales", "quaternions", "opacity_logits", "colour_logits")
"""The per-Gaussian parameters, each N×…; one optimiser group each."""


class Gaussians(nn.Module):
    """N 3D Gaussians with the parameters of :data:`PARAMETERS` and the densification statistics (buffers)."""

    def __init__(self, config: GaussianConfig, start: dict[str, torch.Tensor] | None = None):
        """``start``: the parameters by name (:data:`PARAMETERS`, raw as stored), else :func:`initial_ball`."""
        super().__init__()
        self.config = config
        start = start if start is not None else initial_ball(config)
        for name in PARAMETERS:
            setattr(self, name, nn.Parameter(start[name].clone()))
        count = len(self.means)
        self.register_buffer("gradient_sum", torch.zeros(count))
        self.register_buffer("seen_count", torch.zeros(count))

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def scales(self) -> torch.Tensor:
        """Standard deviations N×3 (world units)."""
        return self.log_scales.exp()

    @property
    def opacities(self) -> torch.Tensor:
        """Opacities N in (0, 1)."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def colours(self) -> torch.Tensor:
        """Albedo N×3 in (0, 1)."""
        return torch.sigmoid(self.colour_logits)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A checkpoint holds as many Gaussians as there were when it was written: take its count first.
        for name in (*PARAMETERS, "gradient_sum", "seen_count"):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                getattr(self, name).data = torch.empty_like(saved, device=self.means.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # --- density field (export) -------------------------------------------------------------------------------
    @torch.no_grad()
    def density(self, points: torch.Tensor, block: float = 0.125) -> torch.Tensor:
        """Density Σᵢ oᵢ exp(−½ dᵢᵀ Σᵢ⁻¹ dᵢ) (N) at world points N×3, each Gaussian counted out to three standard
        deviations. Points are taken a cubic block of ``block`` world units at a time, against only the
        Gaussians that reach the block (:func:`gaussians_per_block`)."""
        inverse = torch.linalg.inv(covariances(self.scales, self.quaternions))  # G×3×3
        # dᵀAd = xᵀAx − 2xᵀAμ + μᵀAμ: the quadratic part as (x², y², z², 2xy, 2xz, 2yz) · A's six entries.
        quadratic = inverse[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]  # G×6
        linear = (inverse @ self.means[..., None])[..., 0]  # G×3
        constant = (linear * self.means).sum(-1)  # G
        reach = 3 * self.scales.amax(-1)  # G, world units: the 3σ ellipsoid lies within
        opacities = self.opacities
        corners = torch.floor(points / block).long()  # P×3, each point's block
        lowest, extent = corners.amin(0), corners.amax(0) - corners.amin(0) + 1
        # Unique blocks by an integer code each (far faster than unique rows), their corners decoded from it.
        codes, owner = torch.unique(block_codes(corners, lowest, extent), return_inverse=True)
        blocks = torch.stack(torch.unravel_index(codes, tuple(extent.tolist())), dim=-1) + lowest
        points_of = torch.argsort(owner, stable=True).split(torch.bincount(owner, minlength=len(blocks)).tolist())
        gaussians_of = gaussians_per_block(blocks, self.means, reach, block)
        density = points.new_zeros(len(points))
        for index, chosen in zip(points_of, gaussians_of, strict=True):
            if len(chosen) == 0:
                continue
            x = points[index]
            products = torch.cat([x * x, 2 * x[:, [0, 0, 1]] * x[:, [1, 2, 2]]], dim=-1)  # P×6
            distance = products @ quadratic[chosen].T - 2 * x @ linear[chosen].T + constant[chosen]  # P×G
            weights = torch.where(distance <= 9, opacities[chosen] * torch.exp(-0.5 * distance), 0.0)
            density[index] = weights.sum(-1)
        return density

    # --- densification ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def record_gradients(self, screen_gradients: torch.Tensor, radii: torch.Tensor, size: int) -> None:
        """Add one render's view-space gradients (B×N×2, pixels) of the Gaussians it drew (radii B×N > 0) to the
        statistics, in normalised device coordinates (×size/2, as 3DGS measures them)."""
        drawn = radii > 0
        norms = screen_gradients.norm(dim=-1) * (size / 2)
        self.gradient_sum += torch.where(drawn, norms, torch.zeros_like(norms)).sum(0)
        self.seen_count += drawn.sum(0)

    @torch.no_grad()
    def densify_and_prune(self, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, int]:
        """Clone the small and split the large Gaussians whose mean view-space gradient exceeds the threshold
        (while under ``max_count``), then prune the transparent and the huge ones; the optimiser's moments follow
        (zeros for new Gaussians). Resets the statistics; returns the counts of each."""
        c = self.config
        mean_gradient = self.gradient_sum / self.seen_count.clamp(min=1)
        wanted = mean_gradient >= c.grad_threshold
        room = max(0, c.max_count - len(self))
        if int(wanted.sum()) > room:  # the largest gradients first
            keep = torch.topk(torch.where(wanted, mean_gradient, -1.0), room).indices
            wanted = torch.zeros_like(wanted).index_fill_(0, keep, True)
        large = self.scales.amax(-1) > c.split_size
        clone, split = wanted & ~large, wanted & large
        new = {name: getattr(self, name)[clone] for name in PARAMETERS}
        # A split Gaussian becomes two, drawn from it, each 1/1.6 its size; the original goes.
        scales, rotation = self.scales[split], quaternion_to_rotation(self.quaternions[split])
        for _ in range(2):
            offset = torch.randn(scales.shape, generator=generator).to(scales) * scales
            halves = {name: getattr(self, name)[split] for name in PARAMETERS}
            halves["means"] = halves["means"] + (rotation @ offset[..., None])[..., 0]
            halves["log_scales"] = (scales / 1.6).log()
            new = {name: torch.cat([new[name], halves[name]]) for name in PARAMETERS}
        kept = ~split
        self._replace(optimizer, kept, new)
        pruned = (self.opacities < c.min_opacity) | (self.scales.amax(-1) > c.max_size)
        self._replace(optimizer, ~pruned, {name: getattr(self, name)[:0] for name in PARAMETERS})
        self.gradient_sum = torch.zeros(len(self), device=self.means.device)
        self.seen_count = torch.zeros(len(self), device=self.means.device)
        return {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int(pruned.sum())}

    def _replace(self, optimizer: torch.optim.Optimizer, kept: torch.Tensor, new: dict[str, torch.Tensor]) -> None:
        """Keep the Gaussians where ``kept`` (N bools) and append ``new`` (values per parameter name), in the
        parameters and in the optimiser's Adam moments (zero for the new ones)."""
        for name in PARAMETERS:
            parameter = getattr(self, name)
            state = optimizer.state.get(parameter, {})
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in state:
                    old = state[moment][kept]
                    state[moment] = torch.cat([old, torch.zeros_like(new[name])])
            parameter.data = torch.cat([parameter.data[kept], new[name]])
            parameter.grad = None


def initial_ball(config: GaussianConfig, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """DreamGaussian's start: ``count`` grey Gaussians of opacity ``init_opacity``, uniform in a ball of
    ``init_radius``, round, each as wide as the root mean squared distance to its three nearest neighbours."""
    count = config.count
    direction = F.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    means = direction * config.init_radius * torch.rand(count, 1, generator=generator) ** (1 / 3)
    spacing = nearest_spacing(means) if count > 1 else torch.full((1,), config.init_radius)
    return {
        "means": means,
        "log_scales": spacing.log()[:, None].repeat(1, 3),
        "quaternions": torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(count, 1),
        "opacity_logits": torch.full((count,), config.init_opacity).logit(),
        "colour_logits": torch.zeros(count, 3),  # albedo ½
    }


def nearest_spacing(points: torch.Tensor, neighbours: int = 3) -> torch.Tensor:
    """Root mean squared distance N from each point (N×3, N ≥ 2) to its ``neighbours`` nearest others (3DGS's
    start scale), at least 1e-4."""
    k = min(neighbours, len(points) - 1) + 1  # itself is nearest
    # 1024 rows at a time, so that the memory grows with N, not N².
    nearest = torch.cat([torch.cdist(part, points).topk(k, largest=False).values for part in points.split(1024)])
    return (nearest[:, 1:] ** 2).mean(-1).clamp(min=1e-8).sqrt().clamp(min=1e-4)


def block_codes(corners: torch.Tensor, lowest: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
    """One integer per block (corners K×3, integer) of a box of blocks from ``lowest`` (3) spanning ``extent``
    (3) blocks: its row-major index in that box."""
    shifted = corners - lowest
    return (shifted[:, 0] * extent[1] + shifted[:, 1]) * extent[2] + shifted[:, 2]


def gaussians_per_block(
    blocks: torch.Tensor, means: torch.Tensor, reach: torch.Tensor, block: float
) -> list[torch.Tensor]:
    """For each of K cubic blocks (integer corners K×3, distinct; block b spans [b, b + 1)·``block`` world units)
    the indices of the Gaussians (means G×3) whose cube of half side ``reach`` (G, world units) meets it, found
    by listing the blocks each Gaussian's cube covers rather than testing every Gaussian against every block."""
    lowest, highest = blocks.amin(0), blocks.amax(0)
    first = torch.floor((means - reach[:, None]) / block).long().clamp(min=lowest)  # G×3, blocks covered
    last = torch.floor((means + reach[:, None]) / block).long().clamp(max=highest)
    span = (last - first + 1).clamp(min=0)  # G×3
    covered = span.prod(-1)  # G
    gaussian = torch.repeat_interleave(torch.arange(len(means), device=means.device), covered)  # one per pair
    local = torch.arange(len(gaussian), device=means.device) - torch.repeat_interleave(
        torch.cumsum(covered, 0) - covered, covered
    )
    sy, sz = span[gaussian, 1], span[gaussian, 2]
    corner = first[gaussian] + torch.stack([local // (sy * sz), local // sz % sy, local % sz], dim=-1)
    extent = highest - lowest + 1
    codes, wanted = block_codes(blocks, lowest, extent), block_codes(corner, lowest, extent)
    order = torch.argsort(codes)
    position = torch.searchsorted(codes[order], wanted).clamp(max=len(blocks) - 1)
    hit = codes[order][position] == wanted  # the covered block holds points
    owner = order[position[hit]]
    gaussian = gaussian[hit][torch.argsort(owner, stable=True)]
    return list(gaussian.split(torch.bincount(owner, minlength=len(blocks)).tolist()))


def quaternion_to_rotation(quaternions: torch.Tensor) -> torch.Tensor:
    """Rotation matrices N×3×3 of quaternions N×4 in (w, x, y, z) order, normalised here (gsplat's order)."""
    w, x, y, z = F.normalize(quaternions, dim=-1).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(-1, 3, 3)


def covariances(scales: torch.Tensor, quaternions: torch.Tensor) -> torch.Tensor:
    """World covariances N×3×3 = R S Sᵀ Rᵀ of Gaussians with standard deviations ``scales`` N×3 (world units,
    along the rotated axes) and rotations ``quaternions`` N×4 (w, x, y, z)."""
    axes = quaternion_to_rotation(quaternions) * scales[:, None, :]
    return axes @ axes.transpose(1, 2)
