"""The embedded motion adapter that ships inside the package: it loads offline, fits the embedded prior and its
budget."""

import json

import torch

from dreamlift.embedded import EMBEDDED_MOTION_DIR, EMBEDDED_PRIOR_DIR
from dreamlift.priors.diffusion import PriorConfig, load_prior
from dreamlift.video.temporal import TemporalAdapter, load_temporal_adapter


def test_ships_loads_offline_and_fits_the_embedded_prior():
    adapter = TemporalAdapter.from_pretrained(EMBEDDED_MOTION_DIR, local_files_only=True)
    assert load_temporal_adapter(EMBEDDED_MOTION_DIR).config == adapter.config
    prior = load_prior(PriorConfig(), EMBEDDED_PRIOR_DIR, torch.device("cpu"))
    adapter.check_fits(prior.unet)
    # Trained against exactly the shipped prior's weights: a retrained prior needs a retrained motion adapter.
    assert json.loads((EMBEDDED_MOTION_DIR / "training.json").read_text())["prior_fingerprint"] == prior.fingerprint()
    assert adapter.config.cross_attention_dim == prior.unet.config.cross_attention_dim  # motion words reach it
    assert adapter.config.prompt_embedding_dim and adapter.config.prompt_frame_basis == 2  # and say which way
    trained = [m.proj_out.weight.abs().max() for m in adapter.modules() if hasattr(m, "proj_out")]
    assert min(trained) > 0  # every temporal layer moved away from its zero start
    size = sum(f.stat().st_size for f in EMBEDDED_MOTION_DIR.rglob("*") if f.is_file())
    assert size <= 10 * 2**20
    card = (EMBEDDED_MOTION_DIR / "README.md").read_text()
    assert "What it knows" in card and "steps" in card
