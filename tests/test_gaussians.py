"""3D Gaussians: their fields, densification with the optimiser's state, the 3DGS .ply, and a prior-free fit."""

import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import trimesh
from conftest import interrupt_at_step

from dreamlift.cli import text3d_main
from dreamlift.config import load_config
from dreamlift.errors import UsageError
from dreamlift.render.gaussians import render_gaussians
from dreamlift.render.mesh import render_mesh
from dreamlift.render.splatting import SplattingConfig
from dreamlift.scene.background import Background, BackgroundConfig
from dreamlift.scene.cameras import CameraConfig, sample_cameras, turntable_cameras
from dreamlift.scene.gaussian_ply import PROPERTIES, read_gaussian_ply, write_gaussian_ply
from dreamlift.scene.gaussians import (
    PARAMETERS,
    GaussianConfig,
    Gaussians,
    nearest_spacing,
    quaternion_to_rotation,
)
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.trainer import TextTo3D


def few_gaussians(count: int = 12, **config) -> Gaussians:
    torch.manual_seed(0)
    return Gaussians(GaussianConfig(count=count, **config))


def adam_with_state(gaussians: Gaussians) -> torch.optim.Adam:
    """Adam over the Gaussians, one group per parameter, after one step (so it has moments)."""
    groups = [{"params": [getattr(gaussians, name)], "lr": 1e-2, "name": name} for name in PARAMETERS]
    optimizer = torch.optim.Adam(groups)
    loss = sum(getattr(gaussians, name).sin().sum() for name in PARAMETERS)
    loss.backward()
    optimizer.step()
    return optimizer


def test_the_start_is_a_grey_ball_of_round_gaussians():
    gaussians = few_gaussians(500, init_radius=0.5, init_opacity=0.1)
    assert len(gaussians) == 500 and gaussians.means.norm(dim=-1).max() <= 0.5
    torch.testing.assert_close(gaussians.opacities, torch.full((500,), 0.1))
    assert torch.equal(gaussians.log_scales[:, 0], gaussians.log_scales[:, 2])  # round
    assert 0.01 < gaussians.scales.median() < 0.1  # about the spacing of 500 points in a ball of radius 0.5
    assert torch.all(gaussians.colours == 0.5)


def test_the_start_scale_is_the_spacing_of_a_grid_even_past_one_chunk_of_rows():
    # 11³ = 1331 grid points 0.1 apart: more than the 1024 rows computed at a time, so two chunks meet.
    axis = torch.arange(11) * 0.1
    grid = torch.cartesian_prod(axis, axis, axis)
    torch.testing.assert_close(nearest_spacing(grid), torch.full((len(grid),), 0.1))


def test_the_density_field_of_one_gaussian_is_its_opacity_times_the_gaussian():
    gaussians = few_gaussians(1)
    with torch.no_grad():
        gaussians.means.copy_(torch.tensor([[0.1, 0.2, -0.05]]))
        gaussians.log_scales.copy_(torch.tensor([[0.2, 0.1, 0.05]]).log())
    rotation = quaternion_to_rotation(gaussians.quaternions)[0]
    along_x = torch.tensor([[0.1, 0.2, -0.05]]) + 0.2 * rotation[:, 0]  # one standard deviation along axis 0
    points = torch.cat([gaussians.means.detach(), along_x, torch.tensor([[0.9, 0.9, 0.9]])])
    opacity = gaussians.opacities.item()
    torch.testing.assert_close(gaussians.density(points), torch.tensor([opacity, opacity * math.exp(-0.5), 0.0]))


def test_the_density_does_not_depend_on_the_blocks_it_is_computed_in():
    gaussians = few_gaussians(300)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # long thin ones too, turned every way, some reaching across several blocks
        gaussians.log_scales.add_(torch.randn(300, 3, generator=generator))
        gaussians.quaternions.copy_(torch.randn(300, 4, generator=generator))
    points = torch.rand(2000, 3, generator=generator) * 1.2 - 0.6
    small, whole = gaussians.density(points, block=0.25), gaussians.density(points, block=4.0)
    torch.testing.assert_close(small, whole)
    assert (small > 0.05).sum() > 100  # the points do sample the Gaussians


def test_densification_clones_splits_and_prunes_with_the_optimiser_state_in_step():
    gaussians = few_gaussians(12, split_size=0.05, grad_threshold=0.5, min_opacity=0.05)
    optimizer = adam_with_state(gaussians)
    moments = {name: optimizer.state[getattr(gaussians, name)]["exp_avg"].clone() for name in PARAMETERS}
    with torch.no_grad():
        gaussians.log_scales[:4] = math.log(0.02)  # 0–3 small: cloned
        gaussians.log_scales[4:8] = math.log(0.1)  # 4–7 large: split in two
        gaussians.log_scales[8:] = math.log(0.02)
        gaussians.opacity_logits[:] = 0.0
        gaussians.opacity_logits[11] = -5.0  # transparent: pruned
    before = {name: getattr(gaussians, name).detach().clone() for name in PARAMETERS}
    gaussians.record_gradients(torch.tensor([[[1.0, 0.0]] * 8 + [[0.0, 0.0]] * 4]), torch.ones(1, 12), size=2)
    counts = gaussians.densify_and_prune(optimizer, torch.Generator().manual_seed(0))
    assert counts == {"cloned": 4, "split": 4, "pruned": 1}
    assert len(gaussians) == 12 + 4 + 4 - 1  # four copies, four replaced by two each, one gone
    for name in PARAMETERS:
        parameter = getattr(gaussians, name)
        state = optimizer.state[parameter]
        assert parameter.shape[0] == len(gaussians) and state["exp_avg"].shape == parameter.shape
        assert state["exp_avg_sq"].shape == parameter.shape
        kept = [0, 1, 2, 3, 8, 9, 10]  # the survivors come first, in order, moments and all
        assert torch.equal(state["exp_avg"][:7], moments[name][kept])
        assert torch.all(state["exp_avg"][7:] == 0)  # the newcomers start without momentum
        assert torch.equal(parameter.detach()[:7], before[name][kept])
    torch.testing.assert_close(gaussians.means.detach()[7:11], before["means"][:4])  # the clones
    torch.testing.assert_close(gaussians.scales[11:], torch.full((8, 3), 0.1 / 1.6))  # the halves
    assert len(gaussians.gradient_sum) == len(gaussians) and gaussians.gradient_sum.sum() == 0
    loss = sum(getattr(gaussians, name).square().sum() for name in PARAMETERS)
    loss.backward()
    optimizer.step()  # the optimiser goes on with the new count


def test_densification_stops_at_the_maximum_count():
    gaussians = few_gaussians(10, max_count=13, split_size=1.0, grad_threshold=0.5, min_opacity=0.0, max_size=5.0)
    optimizer = adam_with_state(gaussians)
    gaussians.record_gradients(torch.linspace(1, 2, 10)[None, :, None].expand(1, 10, 2), torch.ones(1, 10), 2)
    assert gaussians.densify_and_prune(optimizer, torch.Generator())["cloned"] == 3
    assert len(gaussians) == 13


def test_a_checkpoint_of_another_count_loads():
    grown = few_gaussians(30)
    fresh = few_gaussians(12)
    fresh.load_state_dict(grown.state_dict())
    assert len(fresh) == 30 and torch.equal(fresh.means, grown.means)


def test_the_3dgs_ply_round_trips_in_its_standard_layout(tmp_path):
    gaussians = few_gaussians(40)
    with torch.no_grad():
        gaussians.quaternions.copy_(torch.nn.functional.normalize(torch.randn(40, 4), dim=-1))
        gaussians.colour_logits.normal_()
        gaussians.log_scales.add_(torch.randn(40, 3) * 0.3)
    path = tmp_path / "gaussians.ply"
    write_gaussian_ply(gaussians, path)
    header = path.read_bytes().split(b"end_header\n")[0].decode().splitlines()
    assert [line.split()[-1] for line in header if line.startswith("property")] == PROPERTIES
    assert "element vertex 40" in header
    back = read_gaussian_ply(path)
    for name in ("means", "log_scales", "opacity_logits"):
        torch.testing.assert_close(getattr(back, name), getattr(gaussians, name).detach())
    torch.testing.assert_close(back.colours, gaussians.colours.detach(), atol=1e-4, rtol=0)
    rotations = quaternion_to_rotation(back.quaternions), quaternion_to_rotation(gaussians.quaternions.detach())
    torch.testing.assert_close(*rotations)


def test_the_ply_is_written_y_up(tmp_path):
    gaussians = few_gaussians(1)
    with torch.no_grad():
        gaussians.means.copy_(torch.tensor([[0.1, 0.2, 0.3]]))
        gaussians.log_scales.copy_(torch.tensor([[0.3, 0.1, 0.05]]).log())  # longest along world x, shortest z

    write_gaussian_ply(gaussians, tmp_path / "g.ply")
    body = (tmp_path / "g.ply").read_bytes().split(b"end_header\n")[1]
    values = torch.frombuffer(bytearray(body), dtype=torch.float32)
    means, rotation = values[:3], quaternion_to_rotation(values[-4:][None])[0]
    torch.testing.assert_close(means, torch.tensor([0.1, 0.3, -0.2]))  # (x, y, z) → (x, z, −y)
    torch.testing.assert_close(rotation[:, 2].abs(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)  # z is up


def test_a_bad_ply_is_refused(tmp_path):
    path = tmp_path / "mesh.ply"
    trimesh.creation.box().export(path)
    with pytest.raises(UsageError, match="not a 3DGS splat file"):
        read_gaussian_ply(path)


def test_a_prior_free_fit_to_renders_of_a_coloured_sphere():
    """Gaussians fitted by plain photometric loss to rasterized views of an orange sphere reach 26 dB."""
    torch.manual_seed(0)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.45)
    vertices = torch.tensor(sphere.vertices, dtype=torch.float32)
    faces = torch.tensor(sphere.faces, dtype=torch.long)
    background = Background(BackgroundConfig())
    orange = torch.tensor([0.9, 0.5, 0.1])

    def truth(cameras):
        return render_mesh(vertices, faces, lambda p: orange.expand(len(p), 3), background, cameras, 32, 32).rgb

    gaussians = Gaussians(GaussianConfig(count=1500, init_opacity=0.1))
    groups = [
        {"params": [gaussians.means], "lr": 2e-3},
        {"params": [gaussians.log_scales, gaussians.quaternions], "lr": 5e-3},
        {"params": [gaussians.opacity_logits], "lr": 5e-2},
        {"params": [gaussians.colour_logits], "lr": 2e-2},
    ]
    optimizer = torch.optim.Adam(groups, eps=1e-15)
    generator = torch.Generator().manual_seed(0)
    config = SplattingConfig(backend="torch")
    for _ in range(150):
        cameras = sample_cameras(CameraConfig(center_jitter=0, up_jitter=0), 2, generator)
        out = render_gaussians(gaussians, background, cameras, 32, 32, config=config)
        loss = (out.rgb - truth(cameras)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    cameras = turntable_cameras(4, 15.0, 1.8, 47.5)
    with torch.no_grad():
        error = render_gaussians(gaussians, background, cameras, 32, 32, config=config).rgb - truth(cameras)
    psnr = -10 * math.log10(error.square().mean().item())
    assert psnr > 26, psnr


TINY_GAUSSIAN_RUN = [
    "gaussians.model.count=300",
    "gaussians.model.densify_every=2",
    "gaussians.model.grad_threshold=1e-4",
    "train.resolution=16",
    "train.checkpoint_every=2",
    "train.validate_every=3",
    "shading.albedo_only_steps=1",
    "shading.lambertian_probability=0.5",
    "shading.textureless_probability=0.25",
    "export.resolution=24",
    "export.turntable_frames=4",
    "export.turntable_resolution=16",
]


def tiny_gaussian_config(steps: int) -> Text3DConfig:
    return load_config(Text3DConfig, "dreamgaussian", TINY_GAUSSIAN_RUN, {"prompt": "a red cube", "train.steps": steps})


def test_the_gaussian_stage_weighs_the_render_regularisers_as_the_nerf_stage_does():
    from dreamlift.text3d.gaussians import GaussianStage

    config = tiny_gaussian_config(10)
    config.regularisers.sparsity, config.regularisers.carve = 2.0, 3.0  # until 0.3 (dreamfusion's) and 0.5
    config.regularisers.carve_until = 0.5
    # The preset's opacity entropy and pixel target are not what this test weighs.
    config.regularisers.opacity_entropy, config.regularisers.pixel_target = 0.0, 0.0
    stage = GaussianStage(config)
    torch.manual_seed(0)
    scene = stage.make_scene(torch.device("cpu"))
    out = scene.render(turntable_cameras(1, 15.0, 2.0, 45.0), 16, 16)
    assert out.optical_depth.shape == (1, 1, 16, 16) and out.optical_depth.mean() > 0
    denoised = torch.full((1, 3, 16, 16), 0.5)  # all background: every pixel is carved
    generator = torch.Generator().manual_seed(0)
    assert stage.wants_denoised(0.2, "albedo") and not stage.wants_denoised(0.6, "albedo")
    sparsity, carving = 2.0 * out.opacity.mean().item(), 3.0 * out.optical_depth.mean().item()
    assert stage.regularisation(scene, out, 0.2, generator, denoised).item() == pytest.approx(sparsity + carving)
    assert stage.regularisation(scene, out, 0.2, generator).item() == pytest.approx(sparsity)
    assert stage.regularisation(scene, out, 0.4, generator).item() == 0.0


def test_a_gaussian_run_writes_mesh_splats_and_turntable(tiny_prior, tiny_prior_dir, tmp_path):
    run = TextTo3D(tiny_gaussian_config(4), tiny_prior, tmp_path, torch.device("cpu"))
    metrics = run.run()
    run_colours = np.asarray(trimesh.load(tmp_path / "mesh.ply").visual.vertex_colors)[:, :3]
    assert len(run.scenes[0].gaussians) != 300  # densified (a tiny threshold: every drawn Gaussian grows)
    assert [update["step"] for update in metrics["scene_updates"]] == [2]  # every 2 steps, not after the last
    assert metrics["scene_updates"][0]["count"] == len(run.scenes[0].gaussians)
    assert metrics["stage"] == "gaussians" and metrics["export"]["faces"] > 0
    assert len(trimesh.load(tmp_path / "mesh.glb", force="mesh").faces) == metrics["export"]["faces"]
    splats = read_gaussian_ply(tmp_path / "gaussians.ply")
    assert len(splats) == len(run.scenes[0].gaussians)
    assert iio.imread(tmp_path / "turntable.mp4").shape == (4, 16, 16, 3)
    assert iio.imread(tmp_path / "validation" / "step_000003.png").shape == (32, 64, 3)

    # `text3d export` redraws the colours as the run did (the preset's export.redraw), with the run's prior.
    def exported_colours(*overrides: str) -> np.ndarray:
        assert text3d_main(["export", str(tmp_path), f"prior.model={tiny_prior_dir}", *overrides]) == 0
        return np.asarray(trimesh.load(tmp_path / "mesh.ply").visual.vertex_colors)[:, :3]

    redrawn = exported_colours()
    assert np.array_equal(redrawn, run_colours)
    assert not np.array_equal(exported_colours("export.redraw.strength=0"), redrawn)


def test_a_gaussian_run_resumes_as_if_never_stopped(tiny_prior, tmp_path, monkeypatch, one_thread):
    straight = TextTo3D(tiny_gaussian_config(4), tiny_prior, tmp_path / "straight", torch.device("cpu"))
    straight.run()
    interrupted = TextTo3D(tiny_gaussian_config(4), tiny_prior, tmp_path / "resumed", torch.device("cpu"))
    interrupt_at_step(monkeypatch, interrupted, 3)  # after the densification at step 2 and its checkpoint
    resumed = TextTo3D(tiny_gaussian_config(4), tiny_prior, tmp_path / "resumed", torch.device("cpu"))
    resumed.run(resume=True)
    assert len(resumed.scenes[0].gaussians) == len(straight.scenes[0].gaussians) != 300
    for (name, a), (_, b) in zip(straight.scenes[0].state_dict().items(), resumed.scenes[0].state_dict().items()):
        assert torch.equal(a, b), name
