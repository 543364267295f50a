"""The presets for Stable-Diffusion-sized priors fit such a prior: a random model with SD-1.5's image and latent
sizes (512 px ↔ 64×64×4) at toy widths runs a step of each, renders and latents at the presets' own sizes (only
the step count, the field's size and the export are cut, so that it takes seconds)."""

import pytest
import torch

from dreamlift import TextTo3DPipeline
from dreamlift.embedded.random_prior import TINY_SD, build_random_prior

SD_PRESETS = ["dreamfusion-sd", "magic3d-sd", "prolificdreamer-sd", "dreamgaussian-sd"]
CUT = [
    "field.hashgrid.num_levels=4",
    "field.hashgrid.log2_hashmap_size=12",
    "renderer.num_samples=16",
    "export.resolution=24",
    "export.turntable_frames=0",
    "export.redraw.strength=0",
    "gaussians.model.count=100",
    "refine.steps=1",
    "refine.dmtet.grid_resolution=24",
    "refine.dmtet.init_steps=60",
    "refine.dmtet.hashgrid.num_levels=2",
    "export.texture_resolution=32",
]


@pytest.fixture(scope="module")
def sd_sized_prior(tmp_path_factory):
    return build_random_prior(tmp_path_factory.mktemp("prior") / "sd-sized", sizes=TINY_SD)


@pytest.mark.parametrize("preset", SD_PRESETS)
def test_each_sd_preset_runs_a_step_at_its_own_sizes(sd_sized_prior, preset, tmp_path):
    pipe = TextTo3DPipeline(str(sd_sized_prior), "cpu")
    config = pipe.config("a red cube", config=preset, overrides=CUT, steps=2)
    assert pipe.prior(config.prior, torch.device("cpu")).image_size == 512  # the VAE's 512 px, 64×64 latents
    sizes = {config.train.resolution, config.train.high_resolution or config.train.resolution}
    assert sizes <= {64, 512} and (not config.refine.enabled or config.refine.resolution == 512)
    result = pipe.run(config, tmp_path / preset)
    assert result.metrics["export"]["faces"] > 0 and len(result.metrics["loss"]) > 0
