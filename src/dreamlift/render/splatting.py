"""Differentiable splatting of 3D Gaussians (3D Gaussian splatting) in PyTorch, with gsplat's CUDA rasterizer as a
drop-in fast path.

The steps follow 3DGS and gsplat:

1. :func:`~dreamlift.scene.gaussians.covariances` builds each Gaussian's world covariance Σ = R S Sᵀ Rᵀ from
   its scales and quaternion.
2. :func:`project` maps means and covariances into each camera's image with the EWA (local affine) Jacobian of
   the perspective projection: a 2D mean (pixels), a 2D covariance with a low-pass ``eps2d`` on its diagonal,
   its inverse (the conic), the view depth and a footprint radius of ``radius_sigmas`` standard deviations.
3. :func:`composite` evaluates every Gaussian on the pixels of its footprint (α = opacity · exp(−½ dᵀ Σ⁻¹ d),
   at most ``max_alpha``, dropped below ``min_alpha``) and composites the fragments front to back per pixel:
   weight wᵢ = αᵢ Πⱼ₍ⱼ<ᵢ₎ (1 − αⱼ), colour Σ wᵢ cᵢ, opacity Σ wᵢ, depth Σ wᵢ zᵢ, and optical depth
   Σ −log(1 − αᵢ) = −log(1 − opacity), the splats' counterpart of a volume's Σσδ.

The PyTorch compositor works on fragments rather than gsplat's 16-pixel tiles: each Gaussian is evaluated on
the square of pixels its footprint covers, Gaussians grouped by footprint radius so that a small one does not
pay for a big one's square. The fragments are sorted once, by pixel and then by their Gaussian's depth rank; a
pixel's transmittance is an exclusive running sum of log(1 − α) over its own run of fragments (in float64, since
one pass sums the runs of the whole batch). Unlike gsplat's kernel it does not stop a pixel at transmittance
1e-4: what it adds after that point is below 1e-4.

Pixel (row i, column j) has its centre at column j, row i in pixel units, row 0 at the top, as the mesh
rasterizer's :func:`~dreamlift.render.raster.to_pixels` and :func:`~dreamlift.scene.cameras.generate_rays`, so
splatted, rasterized and ray-marched images line up. Cameras are dreamlift's (OpenGL: looking down −z, +y up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from dreamlift.errors import UsageError
from dreamlift.scene.cameras import Cameras
from dreamlift.scene.gaussians import covariances


@dataclass
class SplattingConfig:
    """How Gaussians become pixels."""

    backend: Literal["auto", "torch", "gsplat"] = "auto"
    """``auto``: gsplat's CUDA rasterizer where it imports and the scene is on CUDA, else the PyTorch compositor;
    ``torch``: always the PyTorch compositor; ``gsplat``: gsplat or an error (CUDA only)."""
    eps2d: float = 0.3
    """Added to the diagonal of every 2D covariance (pixels²): a low-pass filter, so that no Gaussian is thinner
    than about a pixel on screen (3DGS and gsplat use 0.3)."""
    radius_sigmas: float = 3.0
    """A footprint's radius in standard deviations of its 2D Gaussian's longer axis."""
    max_radius: int = 32
    """Largest footprint radius in pixels (PyTorch compositor): a Gaussian larger on screen is cut off there."""
    min_alpha: float = 1.0 / 255.0
    """Fragments of lower alpha are skipped (as in 3DGS)."""
    max_alpha: float = 0.99
    """Alpha is clamped to this, so that log(1 − α) stays finite (as in 3DGS)."""
    near: float = 0.01
    """Gaussians whose view depth is below this (world units) are not drawn."""

    def __post_init__(self):
        if self.backend not in ("auto", "torch", "gsplat"):
            raise ValueError(f"splatting.backend must be auto, torch or gsplat, got {self.backend!r}")
        if self.eps2d < 0 or self.radius_sigmas <= 0 or self.max_radius < 1 or self.near <= 0:
            raise ValueError("splatting needs eps2d >= 0, radius_sigmas > 0, max_radius >= 1 and near > 0")
        if not 0 <= self.min_alpha < self.max_alpha < 1:
            raise ValueError("splatting needs 0 <= min_alpha < max_alpha < 1")


@dataclass
class Projection:
    """N Gaussians seen by B cameras.

    means2d: B×N×2, the centre's column and row in pixels; conics: B×N×3, the inverse 2D covariance's entries
    (a, b, c) of [[a, b], [b, c]] (1/pixels²); depths: B×N view depth (world units); radii: B×N footprint radius
    in whole pixels (long), 0 where a Gaussian is not drawn (behind the near plane or off the image).
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor


@dataclass
class Splats:
    """What splatting drew: images and, for densification, the screen-space means.

    rgb: B×H×W×C, not yet composited on a background; alpha, depth: B×H×W (depth is the alpha-weighted view
    depth, not divided by alpha); optical_depth: B×H×W, −log of the transmittance left behind the last
    Gaussian (Σ −log(1 − αᵢ); unlike alpha it does not saturate where many overlap); means2d: B×N×2 screen
    means whose ``.grad`` holds the view-space gradient after a backward pass (3DGS densifies by its norm);
    radii: B×N footprint radii (0: not drawn); fragments: how many (pixel, Gaussian) pairs were composited
    (gsplat: the number of drawn Gaussians).
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    optical_depth: torch.Tensor
    means2d: torch.Tensor
    radii: torch.Tensor
    fragments: int


def focal_lengths(cameras: Cameras, height: int) -> torch.Tensor:
    """Focal length B in pixels of each camera for images ``height`` pixels tall (square pixels)."""
    return height / 2 / torch.tan(cameras.fov_y / 2)


def project(
    means: torch.Tensor,
    covariance: torch.Tensor,
    opacities: torch.Tensor,
    cameras: Cameras,
    height: int,
    width: int,
    config: SplattingConfig,
) -> Projection:
    """Project Gaussians (means N×3, world covariances N×3×3, opacities N) into B cameras' H×W images (EWA
    splatting). A footprint reaches ``radius_sigmas`` standard deviations, or less where the Gaussian's alpha
    falls below ``min_alpha`` sooner (at √(2 ln(opacity / min_alpha)), as gsplat cuts it)."""
    view = torch.linalg.inv(cameras.c2w)  # B×4×4 world-to-camera
    rotation, translation = view[:, :3, :3], view[:, :3, 3]
    points = means @ rotation.transpose(1, 2) + translation[:, None]  # B×N×3, camera looks down −z
    depth = -points[..., 2]
    safe_depth = depth.clamp(min=config.near)
    focal = focal_lengths(cameras, height)[:, None]  # B×1
    column = focal * points[..., 0] / safe_depth + width / 2 - 0.5
    row = -focal * points[..., 1] / safe_depth + height / 2 - 0.5
    # The Jacobian is taken at a point held within 1.3× the field of view (as gsplat does): far off-screen the
    # affine approximation blows a Gaussian up.
    limit_x, limit_y = 1.3 * (width / 2) / focal, 1.3 * (height / 2) / focal
    x = (points[..., 0] / safe_depth).clamp(-limit_x, limit_x) * safe_depth
    y = (points[..., 1] / safe_depth).clamp(-limit_y, limit_y) * safe_depth
    jacobian = points.new_zeros(*points.shape[:2], 2, 3)  # ∂(column, row)/∂(camera x, y, z)
    jacobian[..., 0, 0] = focal / safe_depth
    jacobian[..., 0, 2] = focal * x / safe_depth**2
    jacobian[..., 1, 1] = -focal / safe_depth
    jacobian[..., 1, 2] = -focal * y / safe_depth**2
    camera_covariance = rotation[:, None] @ covariance[None] @ rotation[:, None].transpose(-1, -2)  # B×N×3×3
    screen = jacobian @ camera_covariance @ jacobian.transpose(-1, -2)  # B×N×2×2
    a, b, c = screen[..., 0, 0] + config.eps2d, screen[..., 0, 1], screen[..., 1, 1] + config.eps2d
    determinant = (a * c - b * b).clamp(min=1e-12)
    conics = torch.stack([c / determinant, -b / determinant, a / determinant], dim=-1)
    with torch.no_grad():
        middle = (a + c) / 2
        largest = middle + (middle * middle - determinant).clamp(min=0.1).sqrt()  # eigenvalue of the long axis
        faint = opacities <= config.min_alpha
        reach = (2 * torch.log(opacities / config.min_alpha).masked_fill(faint, 1.0)).sqrt()
        sigmas = reach.clamp(max=config.radius_sigmas).masked_fill(faint, 0.0)  # N
        radii = torch.ceil(sigmas * largest.sqrt()).long()
        on_image = (column + radii > -0.5) & (column - radii < width - 0.5)
        on_image &= (row + radii > -0.5) & (row - radii < height - 0.5)
        radii = torch.where((depth > config.near) & on_image & (radii > 0), radii, torch.zeros_like(radii))
    return Projection(torch.stack([column, row], dim=-1), conics, depth, radii)


def composite(
    projection: Projection,
    opacities: torch.Tensor,
    colours: torch.Tensor,
    height: int,
    width: int,
    config: SplattingConfig,
) -> Splats:
    """Alpha-composite projected Gaussians (opacities N in [0, 1], colours N×C) front to back into B H×W images."""
    batch, count = projection.radii.shape
    pixel, alpha, gaussian = fragments_of(projection, opacities, height, width, config)
    depth_rank = torch.empty_like(projection.radii.reshape(-1))  # of each Gaussian b·N + n among all B·N
    depth_rank[torch.argsort(projection.depths.detach().reshape(-1), stable=True)] = torch.arange(
        len(depth_rank), device=depth_rank.device
    )
    order = torch.argsort(pixel * len(depth_rank) + depth_rank.index_select(0, gaussian))  # by pixel, then depth
    pixel, alpha, gaussian = pixel.index_select(0, order), alpha.index_select(0, order), gaussian[order]
    depth_with_grad = projection.depths.reshape(-1).index_select(0, gaussian)
    _, run_lengths = torch.unique_consecutive(pixel, return_counts=True)
    run_starts = torch.cumsum(run_lengths, 0) - run_lengths
    log_transmittance = torch.log1p(-alpha).double()
    before = torch.cumsum(log_transmittance, 0) - log_transmittance  # Σ over all earlier fragments of the batch
    before = before - before.index_select(0, run_starts).repeat_interleave(run_lengths)  # … of this pixel only
    weights = alpha * torch.exp(before).to(alpha.dtype)
    fragment_colours = colours.index_select(0, gaussian % count)
    size = batch * height * width
    rgb = colours.new_zeros(size, colours.shape[-1]).index_add(0, pixel, weights[:, None] * fragment_colours)
    opacity = weights.new_zeros(size).index_add(0, pixel, weights)
    depth_image = weights.new_zeros(size).index_add(0, pixel, weights * depth_with_grad)
    optical_depth = weights.new_zeros(size).index_add(0, pixel, -log_transmittance.to(alpha.dtype))
    return Splats(
        rgb.reshape(batch, height, width, -1),
        opacity.reshape(batch, height, width),
        depth_image.reshape(batch, height, width),
        optical_depth.reshape(batch, height, width),
        projection.means2d,
        projection.radii,
        len(pixel),
    )


def fragments_of(
    projection: Projection, opacities: torch.Tensor, height: int, width: int, config: SplattingConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (pixel, Gaussian) pair worth compositing: pixel index (b·H + row)·W + column, alpha, and the
    Gaussian's index b·N + n, each of length K (in no particular order)."""
    batch, count = projection.radii.shape
    radii = projection.radii.clamp(max=config.max_radius).reshape(-1)
    means2d, conics = projection.means2d.reshape(-1, 2), projection.conics.reshape(-1, 3)
    pixels, alphas, gaussians = [], [], []
    for size in torch.unique(radii[radii > 0]).tolist():  # the footprint square's half side
        gaussian = torch.nonzero(radii == size).squeeze(1)  # indices b·N + n
        offsets = torch.arange(-size, size + 1, device=radii.device)
        centre = means2d.index_select(0, gaussian)
        nearest = centre.detach().round().long()
        column = nearest[:, 0, None, None] + offsets[None, None, :]  # G×1×S
        row = nearest[:, 1, None, None] + offsets[None, :, None]  # G×S×1
        dx, dy = column - centre[:, 0, None, None], row - centre[:, 1, None, None]  # G×S×S, pixels
        a, b, c = conics.index_select(0, gaussian).unbind(-1)
        power = -0.5 * (a[:, None, None] * dx * dx + c[:, None, None] * dy * dy) - b[:, None, None] * dx * dy
        opacity = opacities.index_select(0, gaussian % count)
        alpha = (opacity[:, None, None] * torch.exp(power)).clamp(max=config.max_alpha)
        inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
        keep = torch.nonzero((inside & (alpha >= config.min_alpha)).reshape(-1)).squeeze(1)
        image = torch.div(gaussian, count, rounding_mode="floor")
        pixel = (image[:, None, None] * height + row) * width + column  # G×S×S
        owner = gaussian[:, None, None].expand_as(pixel).reshape(-1)
        pixels.append(pixel.reshape(-1).index_select(0, keep))
        alphas.append(alpha.reshape(-1).index_select(0, keep))
        gaussians.append(owner.index_select(0, keep))
    if not pixels:
        return radii.new_zeros(0), opacities.new_zeros(0), radii.new_zeros(0)
    return torch.cat(pixels), torch.cat(alphas), torch.cat(gaussians)


def use_gsplat(config: SplattingConfig, device: torch.device) -> bool:
    """Whether to splat with gsplat: by ``config.backend`` and what is available (imported here, lazily)."""
    if config.backend == "torch" or (config.backend == "auto" and device.type != "cuda"):
        return False
    if device.type != "cuda":
        raise UsageError("splatting.backend=gsplat needs CUDA")
    try:
        import gsplat  # noqa: F401
    except ImportError as error:
        if config.backend == "gsplat":
            raise UsageError("splatting.backend=gsplat needs gsplat: pip install 'dreamlift[gsplat]'") from error
        return False
    return True


def splat(
    means: torch.Tensor,
    scales: torch.Tensor,
    quaternions: torch.Tensor,
    opacities: torch.Tensor,
    colours: torch.Tensor,
    cameras: Cameras,
    height: int,
    width: int,
    config: SplattingConfig,
) -> Splats:
    """Draw N Gaussians (means N×3 world, scales N×3 standard deviations in world units, quaternions N×4
    (w, x, y, z), opacities N in [0, 1], colours N×C) from B cameras into H×W images; differentiable in all five."""
    if use_gsplat(config, means.device):
        return _splat_gsplat(means, scales, quaternions, opacities, colours, cameras, height, width, config)
    projection = project(means, covariances(scales, quaternions), opacities, cameras, height, width, config)
    if projection.means2d.requires_grad:
        projection.means2d.retain_grad()
    return composite(projection, opacities, colours, height, width, config)


OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
"""Flips a dreamlift (OpenGL) camera's y and z axes into gsplat's (OpenCV: +y down, looking down +z)."""


def _splat_gsplat(
    means: torch.Tensor,
    scales: torch.Tensor,
    quaternions: torch.Tensor,
    opacities: torch.Tensor,
    colours: torch.Tensor,
    cameras: Cameras,
    height: int,
    width: int,
    config: SplattingConfig,
) -> Splats:
    """:func:`splat` by ``gsplat.rasterization`` (CUDA). gsplat puts pixel centres at +½; the principal point at
    (W/2, H/2) then matches this module's integer centres."""
    import gsplat

    viewmats = OPENGL_TO_OPENCV.to(means) @ torch.linalg.inv(cameras.c2w)
    focal = focal_lengths(cameras, height)
    intrinsics = torch.zeros(len(cameras), 3, 3, device=means.device, dtype=means.dtype)
    intrinsics[:, 0, 0], intrinsics[:, 1, 1] = focal, focal
    intrinsics[:, 0, 2], intrinsics[:, 1, 2], intrinsics[:, 2, 2] = width / 2, height / 2, 1.0
    images, alphas, meta = gsplat.rasterization(
        means, quaternions, scales, opacities, colours, viewmats, intrinsics, width, height,
        near_plane=config.near, eps2d=config.eps2d, render_mode="RGB+ED", packed=False,
    )  # fmt: skip
    if meta["means2d"].requires_grad:
        meta["means2d"].retain_grad()
    alpha = alphas[..., 0]
    depth = images[..., -1] * alpha  # gsplat's "ED" is the expected depth, divided by alpha
    # gsplat stops a pixel at transmittance 1e-4, so its optical depth is read off the opacity, up to about 9.
    optical_depth = -torch.log1p(-alpha.clamp(max=1 - 1e-4))
    radii = meta["radii"]
    radii = radii.amax(-1) if radii.dim() == 3 else radii  # gsplat 1.5 gives an x and a y radius: B×N×2
    drawn = int((radii > 0).sum())
    return Splats(images[..., :-1], alpha, depth, optical_depth, meta["means2d"], radii, drawn)
