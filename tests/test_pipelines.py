"""The Python API: each pipeline driven on a tiny random prior, as a script would drive it."""

import json

import imageio.v3 as iio
import pytest
import torch
import trimesh
from conftest import FAST_REFINE, FAST_TEXT3D

from dreamlift import TextTo3DPipeline, TextToImagePipeline, TextToVideoPipeline
from dreamlift.errors import UsageError
from dreamlift.progress import Progress
from dreamlift.text3d.refine import RefineStage
from dreamlift.text3d.scene_kinds import STAGES


@pytest.fixture(scope="module")
def pipe(tiny_prior_dir):
    return TextTo3DPipeline.from_pretrained(str(tiny_prior_dir), device="cpu")


def test_text_to_3d_makes_a_mesh_reports_each_step_and_saves_its_files(pipe, tmp_path):
    heard: list[Progress] = []
    overrides = [*FAST_TEXT3D, "train.validate_every=2"]
    result = pipe("a red cube", overrides=overrides, steps=3, seed=0, out_dir=tmp_path / "run", callback=heard.append)
    assert [(p.stage, p.step, p.steps) for p in heard] == [
        ("text3d", 1, 3), ("text3d", 2, 3), ("text3d", 3, 3), ("export", 0, 1), ("export", 1, 1)
    ]  # fmt: skip
    assert heard[1].preview is not None and heard[1].preview.is_file() and heard[0].preview is None
    assert all(isinstance(p.loss, float) for p in heard[:3])
    assert isinstance(result.mesh, trimesh.Trimesh) and len(result.mesh.faces) > 0
    assert result.config.prompt == "a red cube" and result.metrics["steps"] == 3
    assert {"mesh.glb", "mesh.obj", "mesh.ply", "turntable.mp4", "config.yaml", "metrics.json"} <= set(result.files)
    assert result.turntable().shape == (2, 16, 16, 3)
    saved = result.save(tmp_path / "asset")
    assert sorted(p.name for p in saved.iterdir()) == sorted(result.files)
    assert (saved / "mesh.glb").read_bytes() == (tmp_path / "run" / "mesh.glb").read_bytes()


def test_live_views_are_written_as_asked_and_change_nothing_of_the_run(pipe, tmp_path, one_thread):
    heard: list[Progress] = []
    plain = pipe("a red cube", overrides=FAST_TEXT3D, steps=3, out_dir=tmp_path / "plain")
    watched_overrides = [*FAST_TEXT3D, "train.live_view_every_s=1e-9"]
    pipe("a red cube", overrides=watched_overrides, steps=3, out_dir=tmp_path / "watched", callback=heard.append)
    # The first step's and the last step's views are always written (those between are spaced by their cost).
    assert heard[0].preview.name == heard[2].preview.name == "live.png" and heard[3].preview is None
    assert [p.title for p in heard] == ["NeRF"] * 3 + ["export"] * 2
    assert iio.imread(heard[0].preview).shape == (16, 32, 3)  # a 16-pixel view, albedo beside shaded
    assert (tmp_path / "watched" / "mesh.glb").read_bytes() == (tmp_path / "plain" / "mesh.glb").read_bytes()
    assert plain.metrics["loss"] == json.loads((tmp_path / "watched" / "metrics.json").read_text())["loss"]


def test_gaussians_come_out_with_their_3dgs_file(pipe, tmp_path):
    overrides = [*FAST_TEXT3D, "gaussians.model.count=200"]
    result = pipe("a blue sphere", config="dreamgaussian", overrides=overrides, steps=2, out_dir=tmp_path / "gs")
    assert "gaussians.ply" in result.files and len(result.mesh.faces) > 0
    assert result.metrics["stage"] == "gaussians"


def test_export_refine_and_resume_work_on_a_run_folder(pipe, tmp_path):
    run_dir = tmp_path / "run"
    pipe("a green cone", overrides=FAST_TEXT3D, steps=2, out_dir=run_dir)
    longer = pipe.resume(run_dir, ["train.steps=3"])
    assert longer.metrics["steps"] == 3 and len(longer.metrics["loss"]) > 0
    exported = pipe.export(run_dir, ["export.formats=[ply]", "export.turntable_frames=0"])
    assert exported.metrics["export"]["faces"] > 0 and "turntable" not in exported.metrics["export"]
    refined = pipe.refine(run_dir, FAST_REFINE)
    assert refined.run_dir == run_dir / "refine" and refined.metrics["stage"] == "refine"
    assert {"texture.png", "mesh.mtl"} <= set(refined.files) and len(refined.mesh.faces) > 0


def test_bad_input_is_a_usage_error_and_writes_nothing(pipe, tmp_path):
    with pytest.raises(UsageError, match="the prompt is empty"):
        pipe("  ", out_dir=tmp_path / "empty")
    with pytest.raises(UsageError, match="unknown config key"):
        pipe("a cube", overrides=["train.stepz=3"], out_dir=tmp_path / "typo")
    with pytest.raises(UsageError, match="cannot be refined"):
        pipe("a cube", config="dreamgaussian", overrides=["refine.enabled=true"], out_dir=tmp_path / "gs")
    with pytest.raises(UsageError, match="run folder not found"):
        pipe.export(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_text_to_video_returns_its_frames_and_reports_each_step(tiny_prior_dir, tmp_path):
    heard: list[Progress] = []
    pipe = TextToVideoPipeline(model=str(tiny_prior_dir), device="cpu")
    result = pipe(
        "a red cube moving right", mode="zero-shot", steps=4, frames=3, seed=1, out_dir=tmp_path / "clip",
        callback=heard.append,
    )  # fmt: skip
    assert result.frames.shape == (1, 3, 32, 32, 3) and result.frames.dtype.name == "uint8"
    assert [p.stage for p in heard] == ["text2video"] * len(heard) and heard[-1].step == heard[-1].steps
    assert (iio.imread(result.videos[0], index=None) is not None) and result.videos[0].name == "video.mp4"
    saved = result.save(tmp_path / "saved")
    assert {"video.mp4", "video.gif", "config.yaml", "metrics.json"} == {p.name for p in saved.iterdir()}


def test_old_names_in_run_folders_still_read(tiny_prior_dir, capsys):
    config = TextToVideoPipeline(model=str(tiny_prior_dir)).config("a cube", overrides=["guidance=6"])
    assert config.guidance_scale == 6.0
    assert "config key 'guidance' is now 'guidance_scale'" in capsys.readouterr().err
    config = TextTo3DPipeline().config("a cube", overrides=["regularisers.opaque=3"])
    assert config.regularisers.opacity_entropy == 3.0
    assert "config key 'regularisers.opaque' is now 'regularisers.opacity_entropy'" in capsys.readouterr().err
    with pytest.raises(UsageError, match="give only 'opacity_entropy'"):
        TextTo3DPipeline().config("a cube", overrides=["regularisers.opaque=3", "regularisers.opacity_entropy=1"])
    assert STAGES["mesh"] is STAGES["refine"] is RefineStage  # checkpoints of the refine stage's former name


def test_the_animatediff_preset_reads_and_asks_for_the_published_adapter():
    config = TextToVideoPipeline().config("a corgi running", config="animatediff-sd")
    assert config.motion_adapter == "guoyww/animatediff-motion-adapter-v1-5-2" and config.frames == 16
    assert config.guidance_scale == 7.5
    with pytest.raises(UsageError, match=r"unknown config preset 'dreamfusion' \(known: animatediff-sd;"):
        TextToVideoPipeline().config("a corgi running", config="dreamfusion")  # a text3d preset


def test_text_to_image_samples_the_prior(tiny_prior_dir):
    pipe = TextToImagePipeline(str(tiny_prior_dir), "cpu")
    images = pipe("a red cube", num_images=2, steps=2, seed=3)
    assert images.shape == (2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    torch.testing.assert_close(images, pipe("a red cube", num_images=2, steps=2, seed=3))
    with pytest.raises(UsageError, match="prompt is empty"):
        pipe("")
