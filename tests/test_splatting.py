"""The PyTorch splatting renderer against closed forms, a direct compositing loop and finite differences."""

import math

import pytest
import torch

from dreamlift.errors import UsageError
from dreamlift.render.splatting import SplattingConfig, composite, focal_lengths, project, splat
from dreamlift.scene.cameras import generate_rays, orbit_cameras
from dreamlift.scene.gaussians import covariances, quaternion_to_rotation

TORCH = SplattingConfig(backend="torch")


def front_camera(distance: float = 2.0, fov_deg: float = 50.0, dtype=torch.float32):
    one = torch.ones(1, dtype=dtype)
    return orbit_cameras(0 * one, 0 * one, distance * one, math.radians(fov_deg) * one)


def test_quaternion_rotation_is_orthonormal_and_matches_an_axis_angle():
    angle = 0.7
    quaternion = torch.tensor([[math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)]]) * 3.0  # not unit: normalised
    rotation = quaternion_to_rotation(quaternion)[0]
    expected = torch.tensor(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    torch.testing.assert_close(rotation, expected)
    torch.testing.assert_close(rotation @ rotation.T, torch.eye(3))


def test_covariance_of_a_rotated_gaussian_has_its_scales_along_the_rotated_axes():
    scales = torch.tensor([[0.3, 0.1, 0.05]])
    quaternion = torch.tensor([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]])  # 90° about z: x → y
    sigma = covariances(scales, quaternion)[0]
    torch.testing.assert_close(sigma, torch.diag(torch.tensor([0.01, 0.09, 0.0025])), atol=1e-6, rtol=0)


def test_one_isotropic_gaussian_projects_to_its_closed_form_footprint():
    """A Gaussian of standard deviation s at distance d straight ahead: a circular footprint of f·s/d pixels (plus
    the low-pass filter) centred on the image, and alpha = opacity · exp(−r²/2σ²) at pixel distance r."""
    height = width = 32
    camera, s, opacity = front_camera(), 0.1, 0.8
    config = SplattingConfig(backend="torch", min_alpha=0.0)
    means, scales = torch.zeros(1, 3), torch.full((1, 3), s)
    quaternions = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    projection = project(
        means, covariances(scales, quaternions), torch.tensor([opacity]), camera, height, width, config
    )
    focal = focal_lengths(camera, height)[0]
    variance = (focal * s / 2.0) ** 2 + config.eps2d
    torch.testing.assert_close(projection.means2d[0, 0], torch.tensor([15.5, 15.5]))
    torch.testing.assert_close(projection.conics[0, 0], torch.tensor([1 / variance, 0.0, 1 / variance]))
    assert projection.depths[0, 0].item() == pytest.approx(2.0)
    assert projection.radii[0, 0].item() == math.ceil(3 * math.sqrt(variance))
    splats = composite(projection, torch.tensor([opacity]), torch.ones(1, 3), height, width, config)
    rows, columns = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    squared = (rows - 15.5) ** 2 + (columns - 15.5) ** 2
    within = squared <= projection.radii[0, 0].item() ** 2  # the square footprint holds this disc
    expected = opacity * torch.exp(-squared / (2 * variance))
    torch.testing.assert_close(splats.alpha[0][within], expected[within])
    torch.testing.assert_close(splats.depth[0][within], 2.0 * expected[within])


def test_a_gaussian_behind_the_camera_or_off_the_image_is_not_drawn():
    camera = front_camera()
    means = torch.tensor([[3.0, 0.0, 0.0], [0.0, 5.0, 0.0]])  # behind the camera at x = 2; far to the side
    quaternions = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(2, 1)
    projection = project(
        means, covariances(torch.full((2, 3), 0.05), quaternions), torch.ones(2), camera, 16, 16, TORCH
    )
    assert projection.radii.tolist() == [[0, 0]]
    splats = composite(projection, torch.ones(2), torch.ones(2, 3), 16, 16, TORCH)
    assert splats.fragments == 0 and splats.alpha.abs().sum() == 0


def direct_composite(projection, opacities, colours, height, width, config):
    """Reference: per pixel, every Gaussian whose footprint holds it, sorted by depth, blended in a Python loop."""
    rgb, alpha = torch.zeros(height, width, colours.shape[1]), torch.zeros(height, width)
    for row in range(height):
        for column in range(width):
            hits = []
            for n in range(len(opacities)):
                radius = min(projection.radii[0, n].item(), config.max_radius)
                dx = column - projection.means2d[0, n, 0].item()
                dy = row - projection.means2d[0, n, 1].item()
                centre = projection.means2d[0, n].round()
                if radius == 0 or max(abs(column - centre[0].item()), abs(row - centre[1].item())) > radius:
                    continue
                a, b, c = projection.conics[0, n].tolist()
                value = min(opacities[n].item() * math.exp(-0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy), 0.99)
                if value >= config.min_alpha:
                    hits.append((projection.depths[0, n].item(), value, n))
            transmittance = 1.0
            for _, value, n in sorted(hits):
                rgb[row, column] += transmittance * value * colours[n]
                alpha[row, column] += transmittance * value
                transmittance *= 1 - value
    return rgb, alpha


def three_overlapping_gaussians(dtype=torch.float32):
    means = torch.tensor([[0.3, 0.05, 0.02], [0.0, -0.05, 0.07], [-0.3, 0.013, -0.05]], dtype=dtype)
    scales = torch.tensor([[0.15, 0.1, 0.12], [0.08, 0.2, 0.1], [0.1, 0.1, 0.25]], dtype=dtype)
    quaternions = torch.tensor([[1.0, 0.2, 0.0, 0.1], [0.9, 0.0, 0.4, 0.0], [1.0, 0.0, 0.0, -0.3]], dtype=dtype)
    opacities = torch.tensor([0.9, 0.6, 0.95], dtype=dtype)
    colours = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    return means, scales, quaternions, opacities, colours


def test_compositing_matches_a_direct_front_to_back_loop():
    height, width = 12, 14
    means, scales, quaternions, opacities, colours = three_overlapping_gaussians()
    camera = front_camera(distance=1.5)
    projection = project(means, covariances(scales, quaternions), opacities, camera, height, width, TORCH)
    splats = composite(projection, opacities, colours, height, width, TORCH)
    rgb, alpha = direct_composite(projection, opacities, colours, height, width, TORCH)
    torch.testing.assert_close(splats.rgb[0], rgb, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(splats.alpha[0], alpha, atol=1e-5, rtol=1e-4)
    assert splats.alpha.max() > 0.9  # they do overlap and cover
    # The optical depth is what is left of the light: −log(1 − α), without α's saturation.
    torch.testing.assert_close(splats.optical_depth[0], -torch.log1p(-alpha), atol=1e-4, rtol=1e-3)
    assert splats.optical_depth.max() > 2


def test_a_batch_of_cameras_draws_each_image_as_alone():
    means, scales, quaternions, opacities, colours = three_overlapping_gaussians()
    azimuth = torch.tensor([0.0, 1.0, 2.5])
    cameras = orbit_cameras(azimuth, torch.full((3,), 0.3), torch.full((3,), 1.8), torch.full((3,), 0.9))
    together = splat(means, scales, quaternions, opacities, colours, cameras, 16, 16, TORCH)
    for i in range(3):
        alone = splat(means, scales, quaternions, opacities, colours, cameras[i], 16, 16, TORCH)
        torch.testing.assert_close(together.rgb[i], alone.rgb[0])
        torch.testing.assert_close(together.depth[i], alone.depth[0])


def test_gradients_match_finite_differences():
    height, width = 10, 10
    camera = front_camera(distance=1.5, dtype=torch.float64)
    inputs = [t.requires_grad_(True) for t in three_overlapping_gaussians(torch.float64)]
    config = SplattingConfig(backend="torch", min_alpha=0.0, max_alpha=0.999)
    weights = torch.rand(height, width, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def loss(means, scales, quaternions, opacities, colours):
        out = splat(means, scales, quaternions, opacities, colours, camera, height, width, config)
        images = [out.rgb[0], out.alpha[0, ..., None], out.depth[0, ..., None], out.optical_depth[0, ..., None]]
        return (torch.cat(images, -1) * weights).sum()

    # The footprints (squares of whole pixels around the rounded centres) do not move under gradcheck's steps:
    # no centre lies on a half pixel.
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_screen_means_carry_the_view_space_gradient_for_densification():
    means, scales, quaternions, opacities, colours = three_overlapping_gaussians()
    means.requires_grad_(True)
    splats = splat(means, scales, quaternions, opacities, colours, front_camera(), 16, 16, TORCH)
    splats.rgb.sum().backward()
    assert splats.means2d.grad is not None and splats.means2d.grad.shape == (1, 3, 2)
    assert splats.means2d.grad.abs().sum() > 0


def test_splatted_pixels_line_up_with_the_cameras_rays():
    """A small Gaussian placed on the ray through pixel (row 3, column 11) is drawn brightest there."""
    camera = front_camera()
    origins, directions = generate_rays(camera, 16, 16)
    point = origins[0, 3, 11] + 1.7 * directions[0, 3, 11]
    splats = splat(
        point[None], torch.full((1, 3), 0.01), torch.tensor([[1.0, 0, 0, 0]]), torch.ones(1), torch.ones(1, 3),
        camera, 16, 16, TORCH,
    )  # fmt: skip
    assert divmod(int(splats.alpha[0].argmax()), 16) == (3, 11)


def test_gsplat_backend_on_a_cpu_is_refused():
    means, scales, quaternions, opacities, colours = three_overlapping_gaussians()
    with pytest.raises(UsageError, match="CUDA"):
        splat(means, scales, quaternions, opacities, colours, front_camera(), 8, 8, SplattingConfig(backend="gsplat"))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        SplattingConfig(max_alpha=1.0)
    with pytest.raises(ValueError):
        SplattingConfig(backend="cuda")


def test_a_faint_gaussian_has_a_smaller_footprint_and_one_below_min_alpha_none():
    camera, config = front_camera(), SplattingConfig(backend="torch")
    means, sigma = torch.zeros(3, 3), covariances(torch.full((3, 3), 0.1), torch.tensor([[1.0, 0, 0, 0]] * 3))
    projection = project(means, sigma, torch.tensor([0.9, 0.02, 0.003]), camera, 32, 32, config)
    standard_deviation = math.sqrt(1 / projection.conics[0, 0, 0].item())
    faint_reach = math.sqrt(2 * math.log(0.02 * 255))  # alpha falls to 1/255 there, before 3σ
    assert projection.radii[0].tolist() == [
        math.ceil(3 * standard_deviation),
        math.ceil(faint_reach * standard_deviation),
        0,
    ]


def gsplat_on_cuda() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not gsplat_on_cuda(), reason="the gsplat oracle test needs CUDA and gsplat installed")
def test_torch_splatting_matches_gsplat_forward_and_gradients():
    """The PyTorch renderer is gsplat's oracle, as gsplat tests its kernels against its own torch references:
    the same images and gradients, with gsplat's constants (alpha up to 0.999, footprints of 3.33σ)."""
    generator = torch.Generator().manual_seed(0)
    count = 400
    inputs = [
        (torch.rand(count, 3, generator=generator) - 0.5) * 0.8,
        torch.rand(count, 3, generator=generator) * 0.05 + 0.01,
        torch.randn(count, 4, generator=generator),
        torch.rand(count, generator=generator) * 0.9 + 0.05,
        torch.rand(count, 3, generator=generator),
    ]
    azimuth = torch.tensor([0.3, 2.0])
    cameras = orbit_cameras(azimuth, torch.full((2,), 0.4), torch.full((2,), 1.8), torch.full((2,), 0.8)).to("cuda")
    weights = torch.rand(2, 48, 64, 5, generator=generator).cuda()
    results = {}
    for backend in ("torch", "gsplat"):
        config = SplattingConfig(backend=backend, max_alpha=0.999, radius_sigmas=3.33)
        leaves = [t.cuda().requires_grad_(True) for t in inputs]
        out = splat(*leaves, cameras, 48, 64, config)
        image = torch.cat([out.rgb, out.alpha[..., None], out.depth[..., None]], -1)
        (image * weights).sum().backward()
        results[backend] = (image.detach(), [leaf.grad for leaf in leaves])
    torch.testing.assert_close(results["torch"][0], results["gsplat"][0], atol=2e-3, rtol=1e-2)
    for mine, theirs in zip(results["torch"][1], results["gsplat"][1], strict=True):
        torch.testing.assert_close(mine, theirs, atol=2e-3, rtol=2e-2)
