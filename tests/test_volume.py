import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dreamlift.render.shading import fixed_light
from dreamlift.render.volume import OccupancyGrid, VolumeRenderer, VolumeRendererConfig, ray_aabb
from dreamlift.scene.background import Background, BackgroundConfig
from dreamlift.scene.cameras import orbit_cameras
from dreamlift.scene.fields import FieldConfig, FieldOutput, RadianceField
from dreamlift.scene.hashgrid import HashGridConfig

RADIUS = 0.5


class SolidSphere(nn.Module):
    """An analytic field: density 200 inside a sphere of radius 0.5, red albedo, outward (or inward) normals."""

    def __init__(self, normal_sign: float = 1.0):
        super().__init__()
        self.normal_sign = normal_sign

    def forward(self, points, with_normals=False):
        density = torch.where(points.norm(dim=-1) < RADIUS, 200.0, 0.0)
        albedo = torch.tensor([1.0, 0.0, 0.0]).expand(points.shape[0], 3)
        normal = self.normal_sign * F.normalize(points, dim=-1) if with_normals else None
        return FieldOutput(density, albedo, normal)

    def density(self, points):
        return self(points).density


@pytest.fixture
def rendered():
    config = VolumeRendererConfig(num_samples=256, occupancy_resolution=64)
    grid = OccupancyGrid(config, bound=1.0)
    field = SolidSphere()
    grid.update(0, field)
    renderer = VolumeRenderer(config, grid)
    distance, fov = 2.0, math.radians(40)
    cameras = orbit_cameras(torch.tensor([0.3]), torch.tensor([0.2]), torch.tensor([distance]), torch.tensor([fov]))
    size = 64
    out = renderer.render(field, Background(BackgroundConfig(colour=(0.0, 0.0, 1.0))), cameras, size, size)
    return out, distance, fov, size


def test_sphere_alpha_mask_matches_the_projected_disc(rendered):
    out, distance, fov, size = rendered
    focal = 0.5 * size / math.tan(fov / 2)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    # A pixel sees the sphere when its ray passes within RADIUS of the centre.
    ray_angle = torch.atan(torch.sqrt((xs - size / 2) ** 2 + (ys - size / 2) ** 2) / focal)
    inside = distance * torch.sin(ray_angle) < RADIUS
    mask = out.opacity[0, 0] > 0.5
    disagreement = (mask != inside).float().mean().item()
    assert disagreement < 0.01  # only edge pixels may differ
    assert out.opacity[0, 0][inside].mean() > 0.98


def test_sphere_depth_and_colour(rendered):
    out, distance, _, size = rendered
    centre = out.depth[0, 0, size // 2 - 1 : size // 2 + 1, size // 2 - 1 : size // 2 + 1]
    assert centre.mean().item() == pytest.approx(distance - RADIUS, abs=0.02)
    assert torch.allclose(out.rgb[0, :, size // 2, size // 2], torch.tensor([1.0, 0.0, 0.0]), atol=0.02)
    assert torch.allclose(out.rgb[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-4)  # background


def test_occupancy_skips_empty_space(rendered):
    out, *_ = rendered
    total = 64 * 64 * 256
    assert out.samples < 0.1 * total


def test_ray_aabb():
    origins = torch.tensor([[-3.0, 0.0, 0.0], [-3.0, 2.0, 0.0]])
    directions = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    near, far = ray_aabb(origins, directions, 1.0)
    assert near[0].item() == pytest.approx(2.0) and far[0].item() == pytest.approx(4.0)
    assert far[1] < near[1]  # a miss


def render_shaded(field):
    config = VolumeRendererConfig(num_samples=128)
    grid = OccupancyGrid(config, 1.0)
    grid.update(0, field)
    cameras = orbit_cameras(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([2.0]), torch.tensor([0.7]))
    light = (torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0.0]))
    return VolumeRenderer(config, grid).render(
        field, Background(BackgroundConfig()), cameras, 32, 32, "lambertian", light
    )


def test_shaded_render_has_normals_and_orientation():
    out = render_shaded(SolidSphere())
    # Facing the light head-on the centre is fully lit; the normal there points at the camera (+x).
    assert out.rgb[0, 0, 16, 16].item() == pytest.approx(1.0, abs=0.05)
    assert out.normal[0, 0, 16, 16].item() == pytest.approx(1.0, abs=0.05)
    inward = render_shaded(SolidSphere(normal_sign=-1.0))
    # Only the faint samples just behind the surface face away when normals point out; all do when they point in.
    assert out.backfacing.mean().item() < 1e-3
    assert inward.backfacing.mean().item() > 100 * out.backfacing.mean().item()
    assert inward.rgb[0, 0, 16, 16].item() == pytest.approx(0.0, abs=0.05)  # lit from behind: dark


@pytest.mark.skipif(not torch.cuda.is_available(), reason="nerfacc's occupancy-grid sampler needs CUDA")
def test_nerfacc_cuda_sampler_matches_the_torch_sampler():
    renders = {}
    for sampler in ("torch", "nerfacc"):
        config = VolumeRendererConfig(num_samples=256, occupancy_resolution=64, sampler=sampler)
        grid = OccupancyGrid(config, bound=1.0).cuda()
        field = CudaField(SolidSphere())
        grid.update(0, field)
        cameras = orbit_cameras(torch.tensor([0.3]), torch.tensor([0.2]), torch.tensor([2.0]), torch.tensor([0.7])).to(
            "cuda"
        )
        background = Background(BackgroundConfig(colour=(0.0, 0.0, 1.0))).cuda()
        renders[sampler] = VolumeRenderer(config, grid).render(field, background, cameras, 64, 64)
    for name in ("rgb", "opacity", "depth"):
        a, b = getattr(renders["torch"], name), getattr(renders["nerfacc"], name)
        assert (a - b).abs().mean() < 0.01, name


class CudaField(nn.Module):
    """The analytic sphere with its constants on the GPU."""

    def __init__(self, field):
        super().__init__()
        self.field = field

    def forward(self, points, with_normals=False):
        out = self.field(points.cpu(), with_normals)
        return FieldOutput(
            *(t.to(points.device) if t is not None else None for t in (out.density, out.albedo, out.normal))
        )

    def density(self, points):
        return self(points).density


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_nerfacc_sampler_on_cpu_is_a_usage_error():
    from dreamlift.errors import UsageError

    config = VolumeRendererConfig(sampler="nerfacc")
    with pytest.raises(UsageError, match="needs CUDA"):
        VolumeRenderer(config, OccupancyGrid(config, 1.0)).use_nerfacc_sampler(torch.device("cpu"))


@pytest.mark.parametrize("shading", ["albedo", "lambertian"])
def test_a_render_in_checkpointed_chunks_matches_the_whole_render_and_its_gradients(shading):
    """Chunking (with gradients on, checkpointed) changes neither the images nor the gradients they give the
    field, normals' double backward included."""
    torch.manual_seed(0)
    field = RadianceField(FieldConfig(hashgrid=HashGridConfig(num_levels=4, log2_hashmap_size=12)), torch.device("cpu"))
    background = Background(BackgroundConfig(colour=(0.0, 0.0, 1.0)))
    cameras = orbit_cameras(
        torch.tensor([0.3, 1.2]), torch.tensor([0.2, 0.4]), torch.tensor([2.0, 2.0]), torch.tensor([0.7, 0.7])
    )
    light = fixed_light(2, "cpu")

    def render(ray_chunk: int):
        config = VolumeRendererConfig(num_samples=32, occupancy_resolution=8, ray_chunk=ray_chunk)
        grid = OccupancyGrid(config, bound=1.0)
        torch.manual_seed(2)  # the grid's update samples random points in its cells
        grid.update(0, field)
        out = VolumeRenderer(config, grid).render(
            field, background, cameras, 12, 12, shading, light, True, torch.Generator().manual_seed(1)
        )
        images = [out.rgb, out.opacity, out.depth, out.optical_depth]
        if shading != "albedo":
            images += [out.normal, out.backfacing]
        images = torch.cat(images, dim=1)
        weights = torch.rand(images.shape, generator=torch.Generator().manual_seed(3))  # a fixed random loss
        field.zero_grad()
        (images * weights).sum().backward()
        return images.detach(), [p.grad.clone() for p in field.parameters()], out.samples

    whole, whole_grads, whole_samples = render(ray_chunk=1000)
    chunked, chunked_grads, chunked_samples = render(ray_chunk=50)  # 288 rays: 6 chunks, the last one short
    assert chunked_samples == whole_samples > 0
    torch.testing.assert_close(chunked, whole)
    assert any(g.abs().sum() > 0 for g in whole_grads)
    for got, expected in zip(chunked_grads, whole_grads):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
