import pytest
import torch

from dreamlift.guidance import GuidanceConfig
from dreamlift.guidance.sds import SDSGuidance
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.scene.cameras import orbit_cameras


def cameras(batch):
    az = torch.deg2rad(torch.tensor([0.0, 120.0, 200.0][:batch]))
    return orbit_cameras(az, torch.zeros(batch), torch.full((batch,), 2.0), torch.full((batch,), 0.8))


def replay_noising(guidance, latents, progress, seed):
    """The t, ε, ᾱ_t and x_t that a guidance call with a generator seeded ``seed`` draws, recomputed directly."""
    generator = torch.Generator().manual_seed(seed)
    low, high = guidance.timestep_range(progress)
    t = torch.randint(low, high + 1, (latents.shape[0],), generator=generator)
    noise = torch.randn(latents.shape, generator=generator)
    a = guidance.prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    return t, noise, a, a.sqrt() * latents.detach() + (1 - a).sqrt() * noise


def test_sds_gradient_equals_weighted_noise_residual(tiny_prior, monkeypatch):
    guidance = SDSGuidance(GuidanceConfig(scale=20.0, weighting="sds"), tiny_prior)
    prompts = PromptEmbeddings(tiny_prior, "a red cube")
    cams = cameras(3)
    latents = tiny_prior.encode_images(torch.rand(3, 3, 32, 32)).detach().requires_grad_(True)
    # Feed latents straight in, so the gradient is read off before the (non-linear) VAE encoder.
    monkeypatch.setattr(tiny_prior, "encode_images", lambda x: x)
    out = guidance(latents, cams, prompts, progress=0.3, generator=torch.Generator().manual_seed(7))
    out.loss.backward()

    t, noise, a, noisy = replay_noising(guidance, latents, 0.3, 7)
    cond, uncond = prompts.for_cameras(cams.azimuth, cams.elevation)
    eps_c = tiny_prior.predict_noise(noisy, t, cond)
    eps_u = tiny_prior.predict_noise(noisy, t, uncond)
    eps_hat = eps_u + 20.0 * (eps_c - eps_u)
    grad = (1 - a) * (eps_hat - noise)
    assert torch.allclose(latents.grad, grad / 3, atol=1e-5)  # the loss is averaged over the batch
    assert abs(out.loss.item() - 0.5 * grad.square().sum().item() / 3) < 1e-3 * out.loss.item()


def test_uniform_weighting_clipping_and_nan_guard(tiny_prior, monkeypatch):
    prompts = PromptEmbeddings(tiny_prior, "a red cube")
    guidance = SDSGuidance(GuidanceConfig(weighting="uniform", grad_clip=0.01), tiny_prior)
    assert guidance.weight(torch.tensor([10, 900])).tolist() == [1.0, 1.0]
    monkeypatch.setattr(tiny_prior, "encode_images", lambda x: x)
    latents = torch.rand(2, 4, 16, 16, requires_grad=True)
    guidance(latents, cameras(2), prompts, 0.0, torch.Generator().manual_seed(0)).loss.backward()
    assert latents.grad.abs().max().item() == pytest.approx(
        0.01 / 2, rel=1e-4
    )  # clipped per element, then batch-averaged
    # A NaN in the prior's prediction becomes a zero gradient and is reported.
    original = tiny_prior.predict_noise_cfg
    monkeypatch.setattr(
        tiny_prior,
        "predict_noise_cfg",
        lambda *a, **k: tuple(torch.full_like(x, float("nan")) for x in original(*a, **k)),
    )
    latents = torch.rand(1, 4, 16, 16, requires_grad=True)
    out = guidance(latents, cameras(1), prompts, 0.0)
    out.loss.backward()
    assert out.diagnostics["nonfinite"] == 1.0 and latents.grad.abs().sum() == 0


def test_timestep_annealing(tiny_prior):
    guidance = SDSGuidance(GuidanceConfig(t_min=0.02, t_max=0.98, t_max_final=0.5), tiny_prior)
    assert guidance.timestep_range(0.0) == (20, 980)
    assert guidance.timestep_range(0.5) == (20, 740)
    assert guidance.timestep_range(1.0) == (20, 500)


def test_the_denoised_target_of_sds_is_the_priors_one_step_prediction(tiny_prior, monkeypatch):
    guidance = SDSGuidance(GuidanceConfig(scale=7.5, weighting="sds"), tiny_prior)
    prompts = PromptEmbeddings(tiny_prior, "a red cube")
    cams = cameras(2)
    latents = tiny_prior.encode_images(torch.rand(2, 3, 32, 32)).detach().requires_grad_(True)
    monkeypatch.setattr(tiny_prior, "encode_images", lambda x: x)
    out = guidance(latents, cams, prompts, 0.2, torch.Generator().manual_seed(3), denoise=True)
    assert guidance(latents, cams, prompts, 0.2, torch.Generator().manual_seed(3)).denoised is None

    t, _, a, noisy = replay_noising(guidance, latents, 0.2, 3)
    cond, uncond = prompts.for_cameras(cams.azimuth, cams.elevation)
    eps_hat = tiny_prior.predict_noise_cfg(noisy, t, cond, uncond, 7.5)[0]
    expected = tiny_prior.decode((noisy - (1 - a).sqrt() * eps_hat) / a.sqrt())
    assert out.denoised.shape == expected.shape
    assert torch.allclose(out.denoised, expected, atol=1e-4)
