import dataclasses
import json

import pytest
import torch
from diffusers import StableDiffusionPipeline

from dreamlift.embedded.judge import ShapeJudge, augment
from dreamlift.embedded.shapes import COLOURS, SHAPES, caption, sample_shapes
from dreamlift.embedded.tokenizer import MAX_LENGTH, build_tokenizer
from dreamlift.embedded.train import PriorTrainer, TrainPriorConfig
from dreamlift.embedded.vocabulary import WORDS
from dreamlift.priors.views import VIEWS


def test_tokenizer_has_one_token_per_known_word():
    tokenizer = build_tokenizer()
    for word in WORDS:
        assert len(tokenizer.tokenize(word)) == 1, word
    ids = tokenizer("an orange cube, overhead view").input_ids
    assert len(ids) == 8 and ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert len(tokenizer.tokenize("a corgi")) > 2  # unknown words fall back to letters
    assert tokenizer.model_max_length == MAX_LENGTH


def test_captions():
    assert caption("red", "cube") == "a red cube"
    assert caption("orange", "torus", "side") == "an orange torus, side view"


def test_dataset_is_deterministic_and_labelled():
    a = sample_shapes(12, seed=5, resolution=32)
    b = sample_shapes(12, seed=5, resolution=32)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert a.images.shape == (12, 3, 32, 32) and 0 <= a.images.min() and a.images.max() <= 1
    for colour, shape, text in zip(a.colour.tolist(), a.shape.tolist(), a.captions):
        assert f"{list(COLOURS)[colour]} {SHAPES[shape]}" in text
    assert any("view" in t for t in a.captions) and any("view" not in t for t in a.captions)
    assert a.view.max() < len(VIEWS)
    # Objects cover part of the frame and sit on a light background.
    background = a.images[:, :, 0, 0]
    assert (background > 0.85).all()
    assert not torch.equal(sample_shapes(12, seed=6, resolution=32).images, a.images)


def test_object_colour_matches_its_caption():
    batch = sample_shapes(30, seed=1, resolution=32)
    for image, colour in zip(batch.images, batch.colour.tolist()):
        pixels = image.reshape(3, -1)
        foreground = pixels[:, (pixels.max(0).values - pixels.min(0).values) > 0.25]
        mean = foreground.mean(1)
        expected = torch.tensor(list(COLOURS.values())[colour])
        assert torch.nn.functional.cosine_similarity(mean, expected, dim=0) > 0.9


def test_judge_shapes_and_augment():
    judge = ShapeJudge()
    colour, shape = judge(torch.rand(2, 3, 48, 48))
    assert colour.shape == (2, len(COLOURS)) and shape.shape == (2, len(SHAPES))
    images = torch.rand(4, 3, 16, 16)
    augmented = augment(images, torch.Generator().manual_seed(0))
    assert augmented.shape == images.shape and not torch.equal(augmented, images)


def test_training_runs_resumes_and_writes_a_loadable_folder(tmp_path):
    config = TrainPriorConfig(
        num_images=48,
        resolution=32,
        vae_channels=(8, 8),
        vae_steps=3,
        vae_batch=4,
        unet_channels=(16, 32),
        text_width=32,
        text_layers=1,
        unet_steps=3,
        unet_batch=4,
        judge_steps=2,
        judge_batch=8,
        judge_eval_images=8,
        checkpoint_every=2,
    )
    out, work = tmp_path / "prior", tmp_path / "work"
    PriorTrainer(config, work, out).run()
    log = json.loads((work / "log.json").read_text())
    assert all(log["stages"][s]["done"] for s in ("data", "vae", "latents", "unet", "judge", "export"))
    pipeline = StableDiffusionPipeline.from_pretrained(out, local_files_only=True)
    assert pipeline.vae.config.scaling_factor == pytest.approx(log["stages"]["latents"]["scaling_factor"], rel=1e-4)
    assert pipeline.unet.config.sample_size == 16
    assert pipeline.scheduler.config.steps_offset == 1
    assert (out / "judge.safetensors").is_file()
    summary = json.loads((out / "training.json").read_text())
    assert summary["stages"]["unet"]["steps"] == 3
    # A second run finds every stage done and changes nothing.
    before = (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    PriorTrainer(config, work, out).run()
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == before
    # More U-Net steps train on from the finished checkpoint and export again; the other stages stay done.
    longer = dataclasses.replace(config, unet_steps=5)
    PriorTrainer(longer, work, out).run()
    log = json.loads((work / "log.json").read_text())
    assert log["stages"]["unet"]["steps"] == 5 and log["stages"]["unet"]["earlier"][0]["steps"] == 3
    assert log["stages"]["vae"]["seconds"] == summary["stages"]["vae"]["seconds"]
    assert torch.load(work / "unet.ckpt", weights_only=False)["step"] == 5
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() != before
    assert json.loads((out / "training.json").read_text())["stages"]["unet"]["steps"] == 5


def test_mesh_judge_rasterizer_covers_the_projected_square():
    import math

    import numpy as np
    import trimesh

    from dreamlift.embedded.mesh_judge import hue_colour, render_mesh_file
    from dreamlift.scene.cameras import orbit_cameras

    box = trimesh.creation.box((0.5, 0.5, 0.5))
    box.visual.vertex_colors = np.tile([30, 60, 220, 255], (len(box.vertices), 1))
    fov = math.radians(40)
    camera = orbit_cameras(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([2.0]), torch.tensor([fov]))
    images, masks = render_mesh_file(box, camera, 64)
    image, mask = images[0], masks[0]
    # The front face (x = 0.25) projects to a square of side 0.5 / 1.75 · focal pixels.
    side = 0.5 / 1.75 * (32 / math.tan(fov / 2))
    assert mask.sum().item() == pytest.approx(side**2, rel=0.1)
    assert mask[32, 32] and not mask[0, 0]
    assert image[2, 32, 32] > image[0, 32, 32]  # blue
    assert hue_colour(box) == "blue"
