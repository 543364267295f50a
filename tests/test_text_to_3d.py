import json

import imageio.v3 as iio
import pytest
import torch
import trimesh
from conftest import interrupt_at_step, tiny_config

from dreamlift.config import preset_names
from dreamlift.priors.diffusion import PriorConfig, load_prior
from dreamlift.text3d.config import read_run_config
from dreamlift.text3d.trainer import TextTo3D


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_loads_and_trains_two_steps(tiny_prior_dir, tmp_path, preset):
    prior = load_prior(PriorConfig(model=str(tiny_prior_dir)), tiny_prior_dir, torch.device("cpu"))
    run = TextTo3D(tiny_config(2, preset), prior, tmp_path, torch.device("cpu"))
    losses = [run.train_step()["loss"] for _ in range(2)]
    run.guidance.close()
    assert all(torch.isfinite(torch.tensor(losses)))


def test_run_writes_every_output(tiny_prior, tmp_path):
    metrics = TextTo3D(tiny_config(4), tiny_prior, tmp_path, torch.device("cpu")).run()
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
    validation = sorted(p.name for p in (tmp_path / "validation").iterdir())
    # the default preset's redraw-and-fit rounds fall at steps 1, 2 and 3 of 4 (0.25…0.875 of them, rounded)
    assert validation == ["guidance_000003.png", *(f"redraw_00000{n}.png" for n in (1, 2, 3)), "step_000003.png"]
    assert iio.imread(tmp_path / "validation" / "step_000003.png").shape == (32, 64, 3)
    # render, noised, one-step denoised by the prior; four views at the prior's 32 pixels
    assert iio.imread(tmp_path / "validation" / "guidance_000003.png").shape == (96, 128, 3)
    saved = read_run_config(tmp_path)
    assert saved.prompt == "a red cube" and saved.seed == 0 and saved.train.steps == 4
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["loss"][-1][0] == 4 and written["steps"] == 4 and written["seed"] == 0
    assert written["export"]["faces"] == metrics["export"]["faces"] > 0
    assert len(trimesh.load(tmp_path / "mesh.glb", force="mesh").faces) == metrics["export"]["faces"]
    assert iio.imread(tmp_path / "turntable.mp4").shape == (4, 16, 16, 3)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_resume_after_interruption_matches_an_uninterrupted_run(tiny_prior, tmp_path, monkeypatch, one_thread):
    straight = TextTo3D(tiny_config(4), tiny_prior, tmp_path / "straight", torch.device("cpu"))
    straight.run()

    interrupted = TextTo3D(tiny_config(4), tiny_prior, tmp_path / "resumed", torch.device("cpu"))
    interrupt_at_step(monkeypatch, interrupted, 3)
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=False)["step"] == 3

    resumed = TextTo3D(tiny_config(4), tiny_prior, tmp_path / "resumed", torch.device("cpu"))
    resumed.load_checkpoint()
    assert resumed.step == 3
    saved_moments = interrupted.optimizers[0].state_dict()["state"][0]["exp_avg"]
    assert torch.equal(resumed.optimizers[0].state_dict()["state"][0]["exp_avg"], saved_moments)
    resumed = TextTo3D(tiny_config(4), tiny_prior, tmp_path / "resumed", torch.device("cpu"))
    resumed.run(resume=True)
    for (name, a), (_, b) in zip(straight.scenes[0].state_dict().items(), resumed.scenes[0].state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(
        straight.optimizers[0].state_dict()["state"][0]["exp_avg_sq"],
        resumed.optimizers[0].state_dict()["state"][0]["exp_avg_sq"],
    )


def test_two_particles_share_one_vsd_lora_and_export_separately(tiny_prior_dir, tmp_path):
    prior = load_prior(PriorConfig(model=str(tiny_prior_dir)), tiny_prior_dir, torch.device("cpu"))
    config = tiny_config(2, "prolificdreamer", **{"train.particles": 2, "train.validate_every": 2})
    run = TextTo3D(config, prior, tmp_path, torch.device("cpu"))
    first, second = (dict(scene.named_parameters())["field.mlp.0.weight"].detach().clone() for scene in run.scenes)
    assert not torch.equal(first, second)  # independently initialised
    metrics = run.run()
    assert len(metrics["particle_exports"]) == 2 and metrics["export"] == metrics["particle_exports"][0]
    assert (tmp_path / "mesh.glb").is_file() and (tmp_path / "particle-1" / "mesh.glb").is_file()
    assert iio.imread(tmp_path / "validation" / "step_000002.png").shape == (64, 64, 3)  # 2 particles × 2 rows
    assert iio.imread(tmp_path / "validation" / "guidance_000002.png").shape == (128, 128, 3)  # + the LoRA's row
    assert not any("lora" in name for name, _ in prior.unet.named_parameters())  # the LoRA is gone after the run


def test_staged_settings_follow_the_step():
    config = tiny_config(
        10,
        **{
            "train.high_resolution": 32,
            "train.high_resolution_from": 0.5,
            "guidance.scale": 100.0,
            "guidance.scale_final": 10.0,
        },
    )
    assert [config.train.resolution_at(step) for step in (0, 4, 5, 9)] == [16, 16, 32, 32]
    from dreamlift.guidance.base import Guidance

    guidance = Guidance(config.guidance, prior=None)
    assert [guidance.config.scale_at(p) for p in (0.0, 0.5, 1.0)] == [100.0, 55.0, 10.0]


def nerf_stage_with(**regularisers):
    """The tiny run's NeRF stage whose only regularisers are those given (``name=value`` of ``regularisers.``),
    and a scene of it."""
    from dreamlift.text3d.nerf import NeRFStage

    values = {f"regularisers.{name}": 0.0 for name in ("eikonal", "orientation", "sparsity", "carve")}
    values.update({f"regularisers.{name}": value for name, value in regularisers.items()})
    stage = NeRFStage(tiny_config(10, **values))
    return stage, stage.make_scene(torch.device("cpu"))


def test_the_nerf_stage_weighs_its_regularisers_and_stops_the_sparsity_term_when_told():
    from dreamlift.render.output import RenderOutput

    stage, scene = nerf_stage_with(sparsity=2.0, sparsity_until=0.5)
    opacity = torch.full((1, 1, 4, 4), 0.25)
    out = RenderOutput(torch.zeros(1, 3, 4, 4), opacity, torch.zeros(1, 1, 4, 4), None, None, 16)
    generator = torch.Generator().manual_seed(0)
    assert stage.regularisation(scene, out, 0.2, generator).item() == pytest.approx(0.5)
    assert stage.regularisation(scene, out, 0.5, generator).item() == 0.0


def test_the_background_mask_marks_the_border_colour_and_a_hole_of_it_not_the_object():
    from dreamlift.scene.background import background_mask

    image = torch.full((1, 3, 16, 16), 0.9)
    image[:, :, 3:13, 3:13] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)  # a red ring …
    image[:, :, 6:10, 6:10] = 0.93  # … around a hole that shows the background
    image[:, :, 0, 0] = 0.2  # a dark corner does not move the border's median
    mask = background_mask(image, (16, 16), 0.05)
    assert mask.shape == (1, 1, 16, 16)
    assert mask[0, 0, 1, 8] == 1 and mask[0, 0, 8, 8] == 1 and mask[0, 0, 4, 8] == 0 and mask[0, 0, 0, 0] == 0
    assert mask.sum().item() == 16 * 16 - 10 * 10 + 4 * 4 - 1
    assert torch.equal(background_mask(image, (32, 32), 0.05)[..., ::2, ::2], mask)  # resized to the render


def test_enclosed_background_is_a_hole_the_object_surrounds_not_what_lies_around_its_outline():
    from dreamlift.scene.background import enclosed_background

    mask = torch.ones(1, 1, 16, 16)
    mask[..., 3:13, 3:13] = 0  # a ring …
    mask[..., 6:10, 6:10] = 1  # … around a hole
    hole = torch.zeros_like(mask)
    hole[..., 6:10, 6:10] = 1
    assert torch.equal(enclosed_background(mask), hole)
    mask[..., 7:9, 10:16] = 1  # a gap in the ring joins the hole to the outside: nothing is enclosed
    assert enclosed_background(mask).sum() == 0


def test_carving_holes_only_spares_the_outline():
    from dreamlift.render.output import RenderOutput

    stage, scene = nerf_stage_with(carve=2.0, carve_region="holes")
    optical_depth = torch.ones(1, 1, 8, 8)
    out = RenderOutput(
        torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), None, None, 64, None, optical_depth
    )
    denoised = torch.full((1, 3, 8, 8), 0.9)
    denoised[:, :, 1:7, 1:7] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)  # a red square …
    generator = torch.Generator().manual_seed(0)
    assert stage.regularisation(scene, out, 0.2, generator, denoised).item() == 0.0  # … with nothing enclosed
    denoised[:, :, 3:5, 3:5] = 0.9  # … with a hole of 2×2 pixels
    assert stage.regularisation(scene, out, 0.2, generator, denoised).item() == pytest.approx(2.0 * 4 / 64)


def test_the_carving_term_weighs_the_optical_depth_where_the_denoised_image_shows_background():
    from dreamlift.render.output import RenderOutput

    assert not nerf_stage_with()[0].wants_denoised(0.0, "albedo")
    stage, scene = nerf_stage_with(carve=2.0, carve_until=0.5)
    optical_depth = torch.arange(16.0).view(1, 1, 4, 4)
    out = RenderOutput(
        torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), None, None, 16, None, optical_depth
    )
    denoised = torch.full((1, 3, 8, 8), 0.9)
    denoised[:, :, 2:6, 2:6] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)  # the object: the middle 2×2 pixels
    generator = torch.Generator().manual_seed(0)
    assert stage.wants_denoised(0.2, "albedo") and not stage.wants_denoised(0.5, "albedo")
    assert not stage.wants_denoised(0.2, "textureless") and not stage.wants_denoised(0.2, "lambertian")
    expected = 2.0 * (optical_depth.sum() - optical_depth[..., 1:3, 1:3].sum()).item() / 16
    assert stage.regularisation(scene, out, 0.2, generator, denoised).item() == pytest.approx(expected)
    assert stage.regularisation(scene, out, 0.2, generator).item() == 0.0


def test_the_pixel_target_pulls_albedo_renders_towards_the_denoised_image_all_run_without_carving():
    from dreamlift.render.output import RenderOutput

    stage, scene = nerf_stage_with(carve=2.0, carve_until=0.5, pixel_target=3.0)
    assert stage.wants_denoised(0.9, "albedo") and not stage.wants_denoised(0.9, "lambertian")
    ones = torch.ones(1, 1, 4, 4)
    out = RenderOutput(torch.full((1, 3, 4, 4), 0.5), ones, torch.zeros(1, 1, 4, 4), None, None, 16, None, ones)
    denoised = torch.full((1, 3, 8, 8), 0.9)  # all background: the carving term, while it applies, weighs every ray
    generator = torch.Generator().manual_seed(0)
    pixel_term = 3.0 * (0.9 - 0.5) ** 2  # the target resized to the render's 4×4 pixels
    assert stage.regularisation(scene, out, 0.9, generator, denoised).item() == pytest.approx(pixel_term)
    assert stage.regularisation(scene, out, 0.2, generator, denoised).item() == pytest.approx(pixel_term + 2.0)
