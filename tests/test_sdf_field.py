"""The signed-distance geometry of the radiance field: VolSDF density, its β schedule, eikonal term and export."""

import numpy as np
import pytest
import torch

from dreamlift.embedded.fidelity import best_fit_iou
from dreamlift.render.volume import VolumeRendererConfig
from dreamlift.scene.background import BackgroundConfig
from dreamlift.scene.cameras import turntable_cameras
from dreamlift.scene.fields import FieldConfig, RadianceField
from dreamlift.scene.hashgrid import HashGridConfig
from dreamlift.scene.topology import topology
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.nerf import NeRFScene
from dreamlift.text3d.surface import extract_mesh

SMALL_GRID = HashGridConfig(num_levels=4, log2_hashmap_size=12, max_resolution=64)


def sphere_field(radius: float = 0.5, beta=(0.1, 0.02)) -> RadianceField:
    """An SDF field whose MLP outputs zero: s = ‖x‖ − radius exactly."""
    field = RadianceField(
        FieldConfig(hashgrid=SMALL_GRID, geometry="sdf", sdf_radius=radius, sdf_beta=beta), torch.device("cpu")
    )
    torch.nn.init.zeros_(field.mlp[-1].weight)
    torch.nn.init.zeros_(field.mlp[-1].bias)
    return field


def test_sdf_density_is_opaque_inside_clear_outside_and_half_its_peak_at_the_surface():
    field = sphere_field()
    points = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.9]])
    density = field.density(points)
    beta = 0.1
    assert density[2].item() == pytest.approx(0.5 / beta) == field.surface_density()
    assert density[0].item() == pytest.approx((1 - 0.5 * np.exp(-0.5 / beta)) / beta)
    assert density[1] > density[2] > density[3] and density[3].item() == pytest.approx(0.5 * np.exp(-4) / beta)
    field.set_progress(1.0)
    assert field.beta.item() == pytest.approx(0.02) and field.surface_density() == pytest.approx(25.0)
    field.set_progress(0.5)
    assert field.beta.item() == pytest.approx((0.1 * 0.02) ** 0.5)
    assert RadianceField(FieldConfig(hashgrid=SMALL_GRID), torch.device("cpu")).surface_density() is None


def test_eikonal_term_is_zero_for_a_true_distance_and_positive_otherwise():
    field = sphere_field()
    points = torch.rand(512, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert field.eikonal(points).item() < 1e-8
    for parameter in field.encoding.parameters():
        torch.nn.init.uniform_(parameter, -1, 1)
    torch.nn.init.normal_(field.mlp[-1].weight, std=0.5)
    loss = field.eikonal(points)
    assert loss.item() > 1e-3
    loss.backward()
    assert field.mlp[-1].weight.grad.abs().sum() > 0


def test_an_sdf_scene_exports_its_zero_level_set():
    scene = NeRFScene(
        FieldConfig(hashgrid=SMALL_GRID, geometry="sdf", sdf_radius=0.45),
        VolumeRendererConfig(num_samples=64),
        BackgroundConfig(),
        torch.device("cpu"),
    )
    torch.nn.init.zeros_(scene.field.mlp[-1].weight)
    torch.nn.init.zeros_(scene.field.mlp[-1].bias)
    mesh, threshold = extract_mesh(scene, ExportConfig(resolution=48))
    assert threshold == pytest.approx(scene.field.surface_density())
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 0.45).max() < 2 / 48
    assert topology(mesh).genus == 0 and best_fit_iou(mesh, "sphere").iou > 0.9


def test_sdf_normals_point_along_the_distance_gradient():
    field = sphere_field(beta=(0.1, 0.002))
    field.set_progress(1.0)
    points = torch.tensor([[0.5, 0.0, 0.0], [0.0, -0.9, 0.0], [0.2, 0.2, 0.1]])
    normal = field(points, with_normals=True).normal
    assert torch.allclose(normal, points / points.norm(dim=-1, keepdim=True), atol=1e-5)


def sphere_scene(beta: tuple[float, float], progress: float) -> NeRFScene:
    scene = NeRFScene(
        FieldConfig(hashgrid=SMALL_GRID, geometry="sdf", sdf_radius=0.5, sdf_beta=beta),
        VolumeRendererConfig(num_samples=64, occupancy_resolution=32),
        BackgroundConfig(),
        torch.device("cpu"),
    )
    torch.nn.init.zeros_(scene.field.mlp[-1].weight)
    torch.nn.init.zeros_(scene.field.mlp[-1].bias)
    scene.before_step(0, progress)
    return scene.eval()


def test_the_surface_band_keeps_the_interior_while_beta_is_wide_and_a_shell_once_it_is_sharp():
    wide = sphere_scene((0.1, 0.002), 0.0).grid.estimator.binaries[0]
    sharp = sphere_scene((0.1, 0.002), 1.0).grid.estimator.binaries[0]
    centre, corner, on_surface = (16, 16, 16), (0, 0, 0), (16, 16, 24)  # cell 24 spans x ∈ [0.5, 0.5625]
    assert wide[centre] and wide[on_surface] and not wide[corner]
    assert not sharp[centre] and sharp[on_surface] and not sharp[corner]
    assert sharp.sum() < wide.sum() / 2


def test_a_sharp_sdf_renders_without_fog_and_the_band_skips_only_hidden_samples():
    from dreamlift.embedded.fidelity import fog_fraction
    from dreamlift.scene.cameras import turntable_cameras

    scene = sphere_scene((0.1, 0.002), 1.0)
    camera = turntable_cameras(1, 15.0, 1.8, 47.5)
    banded = scene.render(camera, 96, 96)
    scene.grid.estimator.binaries.fill_(True)
    full = scene.render(camera, 96, 96)
    assert banded.samples < full.samples / 2
    assert torch.allclose(banded.opacity, full.opacity, atol=1e-4)
    assert torch.allclose(banded.rgb, full.rgb, atol=1e-4)
    assert fog_fraction(banded.opacity.reshape(1, 96, 96)) < 0.01
    assert banded.opacity.mean() > 0.1


def test_points_moved_onto_the_surface_and_the_normal_smoothness_of_a_sphere_and_a_bumpy_one():
    field = sphere_field()
    points = torch.rand(2048, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    surface = field.surface_points(points, band=0.1)
    assert 100 < len(surface) < 2048 and torch.allclose(surface.norm(dim=-1), torch.full((len(surface),), 0.5))
    offsets = torch.randn(len(surface), 3, generator=torch.Generator().manual_seed(1)) * 0.02
    smooth = field.normal_smoothness(surface, offsets)
    assert 0 < smooth.item() < 0.1  # a sphere of radius 0.5 turns its normal by about |offset| / 0.5
    for parameter in field.encoding.parameters():
        torch.nn.init.uniform_(parameter, -1, 1)
    torch.nn.init.normal_(field.mlp[-1].weight, std=0.05)
    bumpy = field.normal_smoothness(surface, offsets)
    assert bumpy.item() > 3 * smooth.item()
    bumpy.backward()
    assert field.mlp[-1].weight.grad.abs().sum() > 0


def test_coarse_to_fine_switches_the_finer_hash_grid_levels_on_over_the_run():
    config = FieldConfig(hashgrid=SMALL_GRID, geometry="sdf", start_levels=2, all_levels_at=0.5)
    field = RadianceField(config, torch.device("cpu"))
    points = torch.rand(64, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    per_level = SMALL_GRID.features_per_level
    field.set_progress(0.0)
    before = field.signed_distance(points)
    with torch.no_grad():  # change only the two finest levels' entries (the table holds the levels in order)
        field.encoding.table[field.encoding.offsets[2] :].uniform_(-1, 1)
    expected_levels = {0.0: 2, 0.2: 2, 0.25: 3, 0.49: 3, 0.5: 4, 1.0: 4}
    for progress, levels in expected_levels.items():
        field.set_progress(progress)
        assert field.level_mask.sum().item() == levels * per_level
        assert field.level_mask[: levels * per_level].all()
        changed = not torch.allclose(field.signed_distance(points), before)
        assert changed == (levels > 2)
    # A fresh field (export, a loaded texture) and a field without the schedule use every level.
    assert RadianceField(config, torch.device("cpu")).level_mask.all()
    with pytest.raises(ValueError, match="start_levels"):
        FieldConfig(hashgrid=SMALL_GRID, start_levels=5)
    with pytest.raises(ValueError, match="all_levels_at"):
        FieldConfig(hashgrid=SMALL_GRID, start_levels=2, all_levels_at=1.0)


def test_the_optical_depth_through_a_solid_keeps_the_gradient_its_saturated_opacity_loses():
    scene = sphere_scene((0.05, 0.05), 0.0)  # a sphere of radius 0.5 with β = 0.05: 20 β across its diameter
    camera = turntable_cameras(1, 0.0, 2.0, 40.0)
    out = scene.render(camera, 15, 15)
    centre = (0, 0, 7, 7)  # the ray through the sphere's centre crosses a chord of 1.0
    assert out.opacity[centre].item() > 0.999
    assert out.optical_depth[centre].item() == pytest.approx(1.0 / 0.05, rel=0.05)
    assert out.optical_depth[0, 0, 0, 0].item() < 0.01  # a corner ray misses it
    bias = scene.field.mlp[-1].bias  # raising s everywhere by b shrinks the radius by b
    (opacity_gradient,) = torch.autograd.grad(out.opacity[centre], bias, retain_graph=True)
    (depth_gradient,) = torch.autograd.grad(out.optical_depth[centre], bias)
    assert abs(opacity_gradient[0].item()) < 1e-6
    assert depth_gradient[0].item() == pytest.approx(-2 / 0.05, rel=0.1)  # the chord shrinks by 2b
