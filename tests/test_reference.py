"""Image-to-3D: the reference picture, its mask and camera, the loss that holds a scene to it, and ``--image``."""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import FAST_TEXT3D
from PIL import Image

from dreamlift.cli import text3d_main
from dreamlift.config import load_config
from dreamlift.embedded.shapes import reference_picture
from dreamlift.errors import UsageError
from dreamlift.io import write_png
from dreamlift.report.run_page import run_page
from dreamlift.scene.hashgrid import HashGridConfig
from dreamlift.text3d import DEFAULT_PRESET
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.nerf import NeRFScene, NeRFStage
from dreamlift.text3d.reference import REFERENCE_FILE, ReferenceConfig, ReferenceView, read_picture


@pytest.fixture(scope="module")
def red_cube(tmp_path_factory):
    """A ground-truth picture of a red cube from the default reference camera (64 px, plain background)."""
    path = tmp_path_factory.mktemp("pictures") / "red-cube.png"
    write_png(reference_picture("red", "cube", ReferenceConfig().camera()), path)
    return path


def test_a_picture_without_alpha_is_masked_by_its_border_colour_and_padded_to_a_square(tmp_path):
    pixels = np.full((40, 60, 3), 235, np.uint8)
    pixels[10:30, 20:35] = (200, 20, 20)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    rgba = read_picture(tmp_path / "wide.png", 0.08)
    assert rgba.shape == (4, 60, 60)
    mask = rgba[3] > 0.5
    assert mask.sum() == 20 * 15 and mask[20:40, 20:35].all()  # padded by 10 rows above
    assert torch.allclose(rgba[:3, 25, 25], torch.tensor([200, 20, 20]) / 255)
    with_alpha = np.concatenate([pixels, np.zeros((40, 60, 1), np.uint8)], axis=2)
    with_alpha[5:10, 5:10, 3] = 255
    Image.fromarray(with_alpha, "RGBA").save(tmp_path / "alpha.png")
    assert (read_picture(tmp_path / "alpha.png", 0.08)[3] > 0.5).sum() == 25  # its own alpha, not the border's


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: None, "no such picture"),
        (lambda path: path.write_text("not a picture"), "is not a picture dreamlift can read"),
        (lambda path: Image.fromarray(np.zeros((8, 8), np.uint16) + 300).save(path), "8-bit grey or colour"),
        (lambda path: Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(path), "shows no object"),
    ],
)
def test_a_bad_picture_is_a_usage_error(make, message, tmp_path):
    path = tmp_path / "picture.png"
    make(path)
    with pytest.raises(UsageError, match=message):
        read_picture(path, 0.08)


def test_a_scene_fitted_to_the_reference_alone_shows_the_picture_from_its_camera(red_cube):
    """A prior-free fit: the default preset's field, optimised by the reference loss alone, shows the cube's
    silhouette and colour from the reference camera."""
    torch.manual_seed(0)
    defaults = load_config(Text3DConfig, DEFAULT_PRESET)
    field = dataclasses.replace(
        defaults.field, hashgrid=HashGridConfig(num_levels=6, log2_hashmap_size=14, max_resolution=64)
    )
    scene = NeRFScene(field, defaults.renderer, defaults.background, torch.device("cpu"))
    optimizer = NeRFStage(defaults).make_optimizer(scene)
    reference = ReferenceView(ReferenceConfig(), read_picture(red_cube, 0.08), torch.device("cpu"))
    for step in range(150):
        scene.before_step(step, step / 150)
        loss = reference.loss(scene.render(reference.camera, 32, 32))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scene.eval()
    with torch.no_grad():
        out = scene.render(reference.camera, 32, 32)
    colour, mask = reference.target(32)
    shown, wanted = out.opacity[0, 0] > 0.5, mask[0, 0] > 0.5
    assert (shown & wanted).sum() / (shown | wanted).sum() > 0.9
    assert torch.allclose(out.rgb[0, :, wanted].mean(dim=1), colour[0, :, wanted].mean(dim=1), atol=0.05)


def test_image_to_3d_keeps_its_picture_and_resumes_without_the_original(red_cube, tmp_path, tiny_prior_dir):
    picture = tmp_path / "mine.png"
    picture.write_bytes(red_cube.read_bytes())
    out = tmp_path / "run"
    args = ["--image", str(picture), "--model", str(tiny_prior_dir), "--steps", "2", "--out", str(out), *FAST_TEXT3D]
    assert text3d_main(args) == 0
    assert (out / REFERENCE_FILE).is_file() and (out / "mesh.glb").is_file()
    kept = np.asarray(Image.open(out / REFERENCE_FILE))
    assert kept.shape == (64, 64, 4) and 0 < (kept[..., 3] > 127).mean() < 0.5
    picture.unlink()
    assert text3d_main(["--resume", "--out", str(out), "--steps", "3"]) == 0
    html = run_page(out, out, tmp_path, tmp_path / "assets")
    assert '<img class="reference" src="reference.png"' in html and "image-to-3D (no prompt)" in html


def test_text_to_image_to_3d_draws_its_reference_from_the_prompt_and_view(tiny_prior, tmp_path, monkeypatch):
    from dreamlift.text3d import reference

    prompts = []

    def sample_images(prior, texts, *args):  # the random tiny prior draws noise: a red square on grey instead
        prompts.extend(texts)
        image = torch.full((1, 3, 32, 32), 0.9)
        image[:, :, 8:24, 8:24] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)
        return image

    monkeypatch.setattr(reference, "sample_images", sample_images)
    config = ReferenceConfig(draw=True, elevation=75.0)
    picture = reference.draw_picture(tiny_prior, "a red cube", config, seed=0)
    assert prompts == ["a red cube, overhead view"] and picture.shape == (4, 32, 32)
    assert picture[3].sum() == 16 * 16 and picture[3, 16, 16] == 1 and picture[3, 0, 0] == 0
    view = ReferenceView.for_run(config, tmp_path, torch.device("cpu"), False, lambda: picture)
    assert (tmp_path / REFERENCE_FILE).is_file() and torch.equal(view.target(32)[1][0], picture[3:])


def test_a_drawn_reference_is_kept_in_the_run_folder(tmp_path, tiny_prior_dir):
    out = tmp_path / "run"
    args = ["a red cube", "reference.draw=true", "reference.draw_steps=2", "--model", str(tiny_prior_dir)]
    assert text3d_main([*args, "--steps", "2", "--out", str(out), *FAST_TEXT3D]) == 0
    assert np.asarray(Image.open(out / REFERENCE_FILE)).shape == (32, 32, 4)  # the tiny prior's own size


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image", "missing.png", "a red cube"], "no such picture"),
        (["--image", "notes.txt"], "is not a picture dreamlift can read"),
        (["--image", "notes.txt", "--resume"], "--image does not apply to --resume"),
        (["a red cube", "reference.rgb_weight=-1"], "reference weights must be >= 0"),
    ],
)
def test_bad_image_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a picture")
    out = tmp_path / "run"
    assert text3d_main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("text3d: error:") and message in err[0]
    assert not out.exists() and not (tmp_path / "outputs").exists()
