"""The trained prior that ships inside the package: it loads offline, fits its budget, and draws its prompts."""

import torch
from diffusers import StableDiffusionPipeline

from dreamlift.embedded import EMBEDDED_PRIOR_DIR, embedded_prior_path
from dreamlift.embedded.evaluation import score_prompts
from dreamlift.embedded.judge import ShapeJudge
from dreamlift.priors.diffusion import PriorConfig, load_prior

SUBSET = [("red", "cube"), ("blue", "sphere"), ("green", "cone"), ("yellow", "cylinder"), ("purple", "torus")]


def test_ships_and_loads_offline():
    path, trained = embedded_prior_path()
    assert trained and path == EMBEDDED_PRIOR_DIR
    pipeline = StableDiffusionPipeline.from_pretrained(EMBEDDED_PRIOR_DIR, local_files_only=True)
    assert pipeline.unet.config.sample_size == 16 and pipeline.vae.config.latent_channels == 4
    size = sum(f.stat().st_size for f in EMBEDDED_PRIOR_DIR.rglob("*") if f.is_file())
    assert size <= 20 * 2**20
    card = (EMBEDDED_PRIOR_DIR / "README.md").read_text()
    assert "What it knows" in card and "steps" in card


def test_samples_show_the_prompted_colour_and_shape():
    prior = load_prior(PriorConfig(), EMBEDDED_PRIOR_DIR, torch.device("cpu"))
    judge = ShapeJudge.load(EMBEDDED_PRIOR_DIR / "judge.safetensors")
    guided, guided_images = score_prompts(prior, judge, SUBSET, samples=4, guidance_scale=7.5, steps=20)
    accuracy = sum(s.both for s in guided) / len(guided)
    assert accuracy >= 0.8, [(s.prompt, s.both) for s in guided]
    _, plain_images = score_prompts(prior, judge, SUBSET[:2], samples=4, guidance_scale=1.0, steps=20)
    # Guidance changes what the same seeds draw.
    assert (guided_images[:8] - plain_images).abs().mean() > 0.02
