"""3D Gaussians to and from the .ply layout of 3D Gaussian splatting, the one common splat viewers read.

One binary little-endian vertex per Gaussian with float properties, in this order: x, y, z; nx, ny, nz (zeros);
f_dc_0..2 (the colour's degree-0 spherical-harmonics coefficient, colour = 0.5 + C0 · f_dc); opacity (a logit);
scale_0..2 (log standard deviations); rot_0..3 (a quaternion, w first). The file is written in the mesh files'
y-up axes (:data:`~dreamlift.scene.cameras.Z_UP_TO_Y_UP`), so a splat and its mesh line up in one viewer.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from dreamlift.errors import UsageError
from dreamlift.io import atomic_path
from dreamlift.scene.gaussians import GaussianConfig, Gaussians

SH_C0 = 0.28209479177387814
"""The degree-0 spherical-harmonics basis constant, 1 / (2√π)."""
PROPERTIES = (
    ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"]
    + [f"scale_{i}" for i in range(3)]
    + [f"rot_{i}" for i in range(4)]
)
Z_UP_TO_Y_UP_QUATERNION = torch.tensor([math.sqrt(0.5), -math.sqrt(0.5), 0.0, 0.0])
"""The rotation (x, y, z) → (x, z, −y), −90° about x, as a quaternion (w first)."""


def quaternion_product(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Hamilton products …×4 of quaternions (w first): the rotation ``second``, then ``first``."""
    w1, x1, y1, z1 = first.unbind(-1)
    w2, x2, y2, z2 = second.unbind(-1)
    return torch.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        dim=-1,
    )


@torch.no_grad()
def write_gaussian_ply(gaussians: Gaussians, path: Path) -> None:
    """Write the Gaussians to ``path`` (atomically) in the 3DGS layout, y-up."""
    means = gaussians.means.detach().cpu()
    means = torch.stack([means[:, 0], means[:, 2], -means[:, 1]], dim=-1)
    turn = Z_UP_TO_Y_UP_QUATERNION.expand(len(means), 4)
    quaternions = quaternion_product(turn, torch.nn.functional.normalize(gaussians.quaternions.detach().cpu(), dim=-1))
    columns = [
        means,
        torch.zeros_like(means),
        (gaussians.colours.detach().cpu() - 0.5) / SH_C0,
        gaussians.opacity_logits.detach().cpu()[:, None],
        gaussians.log_scales.detach().cpu(),
        quaternions,
    ]
    values = torch.cat(columns, dim=-1).numpy().astype("<f4")
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(values)}"]
    header += [f"property float {name}" for name in PROPERTIES] + ["end_header"]
    with atomic_path(path) as tmp:
        tmp.write_bytes(("\n".join(header) + "\n").encode("ascii") + values.tobytes())


def read_gaussian_ply(path: Path, config: GaussianConfig | None = None) -> Gaussians:
    """Gaussians read from a 3DGS .ply (as :func:`write_gaussian_ply` writes it, y-up), back in dreamlift's
    z-up world; ``config`` sets their densification. Higher-order colour coefficients, if any, are ignored."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply") or end < 0:
        raise UsageError(f"{path} is not a PLY file")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise UsageError(f"{path}: only binary little-endian PLY files of Gaussians are read")
    count = int(next(line.split()[-1] for line in header if line.startswith("element vertex")))
    names = [line.split()[-1] for line in header if line.startswith("property")]
    missing = sorted(set(PROPERTIES) - set(names) - {"nx", "ny", "nz"})
    if missing or any(not line.startswith("property float ") for line in header if line.startswith("property")):
        raise UsageError(f"{path} is not a 3DGS splat file (float properties; missing: {', '.join(missing)})")
    table = np.frombuffer(data, dtype="<f4", count=count * len(names), offset=end + len(b"end_header\n"))
    table = torch.from_numpy(table.reshape(count, len(names)).astype(np.float32))
    column = {name: table[:, i] for i, name in enumerate(names)}

    def stacked(*keys: str) -> torch.Tensor:
        return torch.stack([column[key] for key in keys], dim=-1)

    x, y_up, z_up = stacked("x", "y", "z").unbind(-1)
    turn_back = Z_UP_TO_Y_UP_QUATERNION * torch.tensor([1.0, -1.0, -1.0, -1.0])  # the inverse rotation
    quaternions = quaternion_product(turn_back.expand(count, 4), stacked("rot_0", "rot_1", "rot_2", "rot_3"))
    colours = (stacked("f_dc_0", "f_dc_1", "f_dc_2") * SH_C0 + 0.5).clamp(1e-4, 1 - 1e-4)
    start = {
        "means": torch.stack([x, -z_up, y_up], dim=-1),
        "log_scales": stacked("scale_0", "scale_1", "scale_2"),
        "quaternions": quaternions,
        "opacity_logits": column["opacity"],
        "colour_logits": colours.logit(),
    }
    return Gaussians(config or GaussianConfig(), start)
