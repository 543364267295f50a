"""Shared fixtures: tiny random priors built on the fly (no network, no shipped weights needed)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

FAST_TEXT3D = [
    "field.hashgrid.num_levels=4",
    "field.hashgrid.log2_hashmap_size=12",
    "renderer.num_samples=32",
    "train.resolution=16",
    "train.validate_every=0",
    "export.resolution=24",
    "export.turntable_frames=2",
    "export.turntable_resolution=16",
    "export.redraw.strength=0",
    "redraw_fit.rounds=0",
]
"""text3d overrides for a run of seconds on a tiny prior (a small field, few samples, a 2-frame turntable, the
colours not redrawn, no redraw-and-fit rounds: test_export.py, test_cli.py and test_redraw_fit.py test those)."""

FAST_REFINE = [
    "refine.steps=2",
    "refine.resolution=16",
    "refine.dmtet.grid_resolution=12",
    "refine.dmtet.init_steps=60",
    "refine.dmtet.hashgrid.num_levels=2",
    "export.texture_resolution=32",
]
"""Refine-stage overrides for seconds more: two steps on a coarse DMTet grid, a small texture."""


@pytest.fixture
def one_thread():
    """Bitwise-reproducible CPU runs: with two threads, scatter-add order varies and Adam (eps 1e-15) amplifies it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY_RUN = [
    "field.hashgrid.num_levels=4",
    "field.hashgrid.log2_hashmap_size=12",
    "field.hashgrid.max_resolution=64",
    "renderer.num_samples=32",
    "renderer.occupancy_resolution=16",
    "train.resolution=16",
    "train.checkpoint_every=2",
    "train.validate_every=3",
    "shading.albedo_only_steps=1",
    "shading.lambertian_probability=0.5",
    "shading.textureless_probability=0.25",
    "guidance.t_max_final=0.98",
    "export.resolution=24",
    "export.turntable_frames=4",
    "export.turntable_resolution=16",
    "export.redraw.steps=1",
    "export.redraw.size=16",
    "redraw_fit.redraw.steps=4",
    "redraw_fit.redraw.size=16",
]
"""text3d overrides of the trainer's tests: a small field, every shading mode within a few steps, checkpoints every
two steps and validation every three."""


def tiny_config(steps: int, preset: str = "dreamfusion", **values):
    """A text3d config of the tiny run: ``steps`` steps of ``preset`` with ``values`` (dotted key → value)."""
    from dreamlift.config import load_config
    from dreamlift.text3d.config import Text3DConfig

    return load_config(Text3DConfig, preset, TINY_RUN, {"prompt": "a red cube", "train.steps": steps, **values})


def interrupt_at_step(monkeypatch, run, step: int) -> None:
    """Run ``run`` (a TextTo3D) until ``step`` steps are done and stop it there as Ctrl-C would (it checkpoints)."""
    from dreamlift.text3d.trainer import TextTo3D

    original_step = TextTo3D.train_step

    def step_then_stop(self):
        if self.step == step:
            raise KeyboardInterrupt
        return original_step(self)

    monkeypatch.setattr(TextTo3D, "train_step", step_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run.run()
    monkeypatch.setattr(TextTo3D, "train_step", original_step)


@pytest.fixture(scope="session")
def tiny_prior_dir(tmp_path_factory):
    """A random latent, epsilon-prediction prior folder (32 px images, 16×16×4 latents)."""
    from dreamlift.embedded.random_prior import build_random_prior

    return build_random_prior(tmp_path_factory.mktemp("prior") / "latent-eps")


@pytest.fixture(scope="session")
def tiny_prior(tiny_prior_dir):
    from dreamlift.priors.diffusion import PriorConfig, load_prior

    return load_prior(PriorConfig(model=str(tiny_prior_dir)), tiny_prior_dir, torch.device("cpu"))


@pytest.fixture(scope="session")
def tiny_v_prior(tmp_path_factory):
    from dreamlift.embedded.random_prior import build_random_prior
    from dreamlift.priors.diffusion import PriorConfig, load_prior

    folder = build_random_prior(tmp_path_factory.mktemp("prior") / "latent-v", seed=1, prediction_type="v_prediction")
    return load_prior(PriorConfig(model=str(folder)), folder, torch.device("cpu"))


@pytest.fixture(scope="session")
def tiny_pixel_prior(tmp_path_factory):
    from dreamlift.embedded.random_prior import build_random_prior
    from dreamlift.priors.diffusion import PriorConfig, load_prior

    folder = build_random_prior(tmp_path_factory.mktemp("prior") / "pixel", seed=2, pixel_space=True)
    return load_prior(PriorConfig(model=str(folder), pixel_space=True), folder, torch.device("cpu"))


# --- a real browser (the report's and the studio's pages) ---------------------------------------------------------
BROWSER_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--use-angle=swiftshader",  # WebGL on the CPU
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
]
VIEWER_TIMEOUT_S = 90
"""Software WebGL on two cores takes 10–20 s to show the first model."""


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no headless Chromium here (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=webdriver.ChromeService(driver), options=options)
    yield session
    session.quit()


def errors_logged(browser) -> list[dict]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
