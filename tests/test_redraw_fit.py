"""Redraw-and-fit: the rounds, their cameras, the views they hold, and a run that checkpoints and resumes them."""

import math

import imageio.v3 as iio
import pytest
import torch
from conftest import interrupt_at_step, tiny_config

from dreamlift.config import load_config
from dreamlift.errors import UsageError
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.text3d.config import Text3DConfig
from dreamlift.text3d.nerf import NeRFStage
from dreamlift.text3d.redraw import PriorRedraw
from dreamlift.text3d.redraw_fit import RedrawFit, RedrawFitConfig
from dreamlift.text3d.reference import ReferenceView
from dreamlift.text3d.trainer import TextTo3D


def test_the_rounds_fall_at_their_fractions_and_the_cameras_ring_the_object():
    config = RedrawFitConfig(rounds=6)
    assert config.round_steps(800) == [200, 300, 400, 500, 600, 700]
    assert RedrawFitConfig(rounds=3, start=0.25, end=0.5).round_steps(4) == [1, 2]  # 1, 1.5 → 2, 2: no repeats
    assert RedrawFitConfig(rounds=6).round_steps(2) == [1, 2]  # never step 0, where nothing is drawn yet
    assert RedrawFitConfig().round_steps(800) == []  # off unless a preset or override sets rounds
    views = config.views()
    assert [(v.azimuth, v.elevation) for v in views] == [
        *((a, 15.0) for a in (0.0, 60.0, 120.0, 180.0, 240.0, 300.0)),
        *((a, 50.0) for a in (45.0, 135.0, 225.0, 315.0)),  # the second ring turned half a step
        (0.0, 80.0),
    ]
    top = views[-1].camera()
    assert math.isclose(top.positions[0, 2].item(), 1.8 * math.sin(math.radians(80)), rel_tol=1e-6)
    assert all(v.rgb_weight == v.mask_weight == 300.0 for v in views)


def test_with_every_2_every_other_step_holds_a_view_and_the_views_take_turns(tiny_prior):
    config = RedrawFitConfig(rounds=1, every=2)
    fit = RedrawFit(config, tiny_prior, prompts=None, seed=0)
    fit.load_state_dict({"pictures": torch.zeros(1, 11, 4, 8, 8)})
    assert [step for step in range(8) if fit.holds(step)] == [0, 2, 4, 6]
    assert [fit.view(step) for step in range(0, 44, 2)] == [*range(11), *range(11)]


@pytest.mark.parametrize(
    "override, message",
    [
        ("redraw_fit.rounds=-1", "rounds must be >= 0"),
        ("redraw_fit.start=0.9", "start <= redraw_fit.end"),
        ("redraw_fit.azimuths=[6, 4]", "one count >= 1 per ring"),
        ("redraw_fit.elevations=[15, 50, 90]", r"\(-90, 90\)"),
        ("redraw_fit.redraw.strength=0", "strength must be > 0"),
        ("redraw_fit.fov=0", "fov in"),
        ("redraw_fit.every=0", "every >= 1"),
    ],
)
def test_bad_redraw_fit_settings_are_usage_errors(override, message):
    with pytest.raises(UsageError, match=message):
        load_config(Text3DConfig, None, ["redraw_fit.rounds=6", override])


class RedSquare:
    """A stand-in for the prior's redrawing: a red square on grey in every view; records what it was given."""

    def __init__(self):
        self.calls = []

    def __call__(self, redraw, images, cameras):
        self.calls.append((redraw.seed, images.shape, cameras.elevation.clone()))
        drawn = torch.full_like(images, 0.9)
        drawn[:, :, 4:12, 4:12] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)
        return drawn


def test_a_round_holds_each_view_to_its_redrawing_and_checkpoints_it(tiny_prior, tmp_path, monkeypatch):
    stand_in = RedSquare()
    monkeypatch.setattr(PriorRedraw, "__call__", lambda self, images, cameras: stand_in(self, images, cameras))
    config = tiny_config(10, **{"redraw_fit.rounds": 1, "redraw_fit.every": 1})
    scene = NeRFStage(config).make_scene(torch.device("cpu"))
    scene.before_step(0, 0.0)  # its occupancy grid, as the trainer's first step sets it
    prompts = PromptEmbeddings(tiny_prior, config.prompt, "", True)
    fit = RedrawFit(config.redraw_fit, tiny_prior, prompts, seed=7)
    assert not fit.holds(3)  # nothing held before the first round

    fit.redraw([scene], step=2, validation_dir=tmp_path)
    ((seed, shape, elevations),) = stand_in.calls
    assert seed == 7 + 2 and shape == (11, 3, 16, 16)  # every camera's render, redrawn with the run's seed + step
    torch.testing.assert_close(torch.rad2deg(elevations), torch.tensor([15.0] * 6 + [50.0] * 4 + [80.0]))
    assert fit.pictures.shape == (1, 11, 4, 16, 16)
    square = torch.zeros(16, 16)
    square[4:12, 4:12] = 1
    assert torch.equal(fit.pictures[0, :, 3], square.expand(11, 16, 16))  # the mask from the border's colour
    assert iio.imread(tmp_path / "redraw_000002.png").shape == (32, 11 * 16, 3)  # renders above, redrawings below

    # Step 14 holds view 14 mod 11 = 3, the second camera of the second ring, with ReferenceView's loss.
    assert fit.holds(14) and fit.view(14) == 3
    camera = fit.camera(14)
    assert torch.equal(camera.c2w, config.redraw_fit.views()[3].camera().c2w)
    scene.train()  # the round left it in eval mode, as the trainer's next step does not
    render = scene.render(camera, 16, 16)
    loss = fit.loss(0, render, step=14)
    expected = ReferenceView(config.redraw_fit.views()[3], fit.pictures[0, 3], torch.device("cpu")).loss(render)
    assert loss.item() == pytest.approx(expected.item()) and loss.item() > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in scene.parameters())

    restored = RedrawFit(config.redraw_fit, tiny_prior, prompts, seed=7)
    restored.load_state_dict(fit.state_dict())
    assert restored.loss(0, render, step=14).item() == pytest.approx(loss.item())
    with pytest.raises(ValueError, match="not 11 RGBA views"):
        restored.load_state_dict({"pictures": torch.zeros(1, 5, 4, 16, 16)})


def test_a_run_with_redraw_rounds_resumes_as_if_never_stopped(tiny_prior, tmp_path, monkeypatch, one_thread):
    def config():
        rounds = {"redraw_fit.rounds": 2, "redraw_fit.start": 0.2, "redraw_fit.end": 0.7}  # at steps 1 and 4 of 6
        return tiny_config(6, **rounds)

    straight = TextTo3D(config(), tiny_prior, tmp_path / "straight", torch.device("cpu"))
    metrics = straight.run()
    assert sorted(p.name for p in (tmp_path / "straight" / "validation").glob("redraw_*")) == [
        "redraw_000001.png",
        "redraw_000004.png",
    ]
    assert metrics["phase_seconds"]["redraw"] > 0

    interrupted = TextTo3D(config(), tiny_prior, tmp_path / "resumed", torch.device("cpu"))
    interrupt_at_step(monkeypatch, interrupted, 2)  # steps 2 and 3 hold the first round's views from the checkpoint
    held = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)["redraw_fit"]["pictures"]
    assert held.shape == (1, 11, 4, 16, 16)
    resumed = TextTo3D(config(), tiny_prior, tmp_path / "resumed", torch.device("cpu"))
    resumed.run(resume=True)
    assert torch.equal(resumed.redraw_fit.pictures, straight.redraw_fit.pictures)
    for (name, a), (_, b) in zip(straight.scenes[0].state_dict().items(), resumed.scenes[0].state_dict().items()):
        assert torch.equal(a, b), name
