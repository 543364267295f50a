import json
import shutil

import pytest
import torch

from dreamlift.errors import UsageError
from dreamlift.priors.diffusion import PriorConfig, load_prior
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.priors.views import VIEWS


def test_frozen_and_shapes(tiny_prior):
    assert not any(p.requires_grad for p in tiny_prior.unet.parameters())
    assert not any(p.requires_grad for p in tiny_prior.vae.parameters())
    images = torch.rand(2, 3, 48, 48, requires_grad=True)
    latents = tiny_prior.encode_images(images)
    assert latents.shape == (2, 4, 16, 16)
    latents.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0  # VAE encoding keeps the gradient
    assert tiny_prior.decode(latents.detach()).shape == (2, 3, 32, 32)


def test_cfg_is_diffusers_form(tiny_prior):
    noisy = torch.randn(2, 4, 16, 16)
    t = torch.tensor([100, 700])
    cond = tiny_prior.encode_text(["a red cube", "a blue sphere"])
    uncond = tiny_prior.encode_text(["", ""])
    guided, eps_c, eps_u = tiny_prior.predict_noise_cfg(noisy, t, cond, uncond, 7.5)
    assert torch.allclose(eps_c, tiny_prior.predict_noise(noisy, t, cond), atol=1e-5)
    assert torch.allclose(eps_u, tiny_prior.predict_noise(noisy, t, uncond), atol=1e-5)
    assert torch.allclose(guided, eps_u + 7.5 * (eps_c - eps_u), atol=1e-5)
    same, _, _ = tiny_prior.predict_noise_cfg(noisy, t, cond, uncond, 1.0)
    assert torch.allclose(same, eps_c, atol=1e-5)  # scale 1 is the conditional prediction


def test_v_prediction_is_converted_to_epsilon(tiny_v_prior):
    prior = tiny_v_prior
    noisy = torch.randn(1, 4, 16, 16)
    t = torch.tensor([500])
    text = prior.encode_text(["a red cube"])
    v = prior.unet(noisy, t, encoder_hidden_states=text).sample
    a = prior.alphas_cumprod[500]
    assert torch.allclose(prior.predict_noise(noisy, t, text), a.sqrt() * v + (1 - a).sqrt() * noisy, atol=1e-5)


def test_pixel_space_prior_works_on_images(tiny_pixel_prior):
    assert tiny_pixel_prior.vae is None and tiny_pixel_prior.image_size == 16
    images = torch.rand(1, 3, 40, 40, requires_grad=True)
    x = tiny_pixel_prior.encode_images(images)
    assert x.shape == (1, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    x.sum().backward()
    assert images.grad.abs().sum() > 0


def test_prompt_embeddings_follow_the_view(tiny_prior):
    prompts = PromptEmbeddings(tiny_prior, "a red cube")
    az = torch.deg2rad(torch.tensor([0.0, 180.0, 90.0]))
    el = torch.zeros(3)
    cond, uncond = prompts.for_cameras(az, el)
    expected = tiny_prior.encode_text(["a red cube, front view", "a red cube, back view", "a red cube, side view"])
    assert torch.allclose(cond, expected, atol=1e-6)
    assert torch.allclose(uncond, tiny_prior.encode_text([""]).expand(3, -1, -1), atol=1e-6)
    assert prompts.view_prompts() == [f"a red cube, {v} view" for v in VIEWS]
    plain = PromptEmbeddings(tiny_prior, "a red cube", view_dependent=False).for_cameras(az, el)[0]
    assert torch.allclose(plain, tiny_prior.encode_text(["a red cube"]).expand(3, -1, -1), atol=1e-6)
    empty = PromptEmbeddings(tiny_prior, "   ")  # image-to-3D without a prompt: the views alone
    assert empty.view_prompts() == [f"{v} view" for v in VIEWS]
    assert torch.allclose(empty.for_cameras(az, el)[0][0], tiny_prior.encode_text(["front view"])[0], atol=1e-6)


def test_loading_errors_are_one_line(tmp_path, tiny_prior_dir):
    cpu = torch.device("cpu")
    with pytest.raises(UsageError, match="model folder not found"):
        load_prior(PriorConfig(), tmp_path / "missing", cpu)
    with pytest.raises(UsageError, match="not a diffusers model folder"):
        load_prior(PriorConfig(), tmp_path, cpu)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_prior_dir, broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(UsageError, match="has no 'unet' component"):
        load_prior(PriorConfig(), broken, cpu)
    garbled = tmp_path / "garbled"
    shutil.copytree(tiny_prior_dir, garbled)
    (garbled / "unet" / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot load model") as err:
        load_prior(PriorConfig(), garbled, cpu)
    assert "\n" not in str(err.value)
    index = json.loads((tiny_prior_dir / "model_index.json").read_text())
    assert index["vae"][1] == "AutoencoderKL"


def test_token_embeddings_are_the_encoders_input_rows_of_each_word(tiny_prior):
    tokens = tiny_prior.embed_tokens(["a red cube moving up", "a red cube moving down"])
    assert tokens.shape == (2, tiny_prior.tokenizer.model_max_length, tiny_prior.text_encoder.config.hidden_size)
    differs = (tokens[0] - tokens[1]).abs().amax(dim=-1) > 0
    assert differs.nonzero().flatten().tolist() == [5]  # only the last word ("up" / "down") differs
    up = tiny_prior.tokenizer("up").input_ids[1]
    assert torch.equal(tokens[0, 5], tiny_prior.text_encoder.get_input_embeddings().weight[up])


def test_redraw_runs_the_last_strength_share_of_the_schedule_and_returns_the_input_size(tiny_prior, monkeypatch):
    from dreamlift.priors.sampling import redraw_images

    images = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))  # the prior draws at 32 px
    prompts = PromptEmbeddings(tiny_prior, "a red cube")
    cond, uncond = prompts.base.expand(2, -1, -1), prompts.negative.expand(2, -1, -1)
    unet, calls = tiny_prior.unet, []

    def counting_unet(sample, t, **kwargs):
        calls.append(int(t))
        return unet(sample, t, **kwargs)

    monkeypatch.setattr(tiny_prior, "unet", counting_unet)
    results = []
    for strength in (0.6, 0.6, 1.0):
        redrawn = redraw_images(tiny_prior, images, cond, uncond, strength, 20, 7.5, torch.Generator().manual_seed(1))
        results.append((redrawn, calls.copy()))
        calls.clear()
    (first, first_calls), (again, _), (full, full_calls) = results
    schedule = tiny_prior.scheduler.timesteps.tolist()  # the last set: 20 steps
    assert first_calls == schedule[8:] and full_calls == schedule  # 12 of 20 steps, from the 9th on; all 20
    assert first.shape == (2, 3, 24, 24) and 0 <= first.min() and first.max() <= 1
    torch.testing.assert_close(first, again)  # the same noise redraws alike
    assert (first - full).abs().max() > 1e-3
