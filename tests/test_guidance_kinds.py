"""VSD, ESD, SJC, ISM and Perp-Neg against direct computations, on tiny random priors."""

import pytest
import torch

from dreamlift.cli import text3d_main
from dreamlift.guidance import GuidanceConfig, ISMConfig, PerpNegConfig, VSDConfig, make_guidance
from dreamlift.guidance.base import perp_neg_combine
from dreamlift.priors.diffusion import PriorConfig, load_prior
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.scene.cameras import orbit_cameras


def cameras(batch):
    az = torch.deg2rad(torch.tensor([0.0, 120.0, 200.0][:batch]))
    return orbit_cameras(az, torch.zeros(batch), torch.full((batch,), 2.0), torch.full((batch,), 0.8))


@pytest.fixture
def fresh_prior(tiny_prior_dir):
    """A prior of its own: VSD adds a LoRA to the U-Net it guides with."""
    return load_prior(PriorConfig(model=str(tiny_prior_dir)), tiny_prior_dir, torch.device("cpu"))


def latents_in(prior, monkeypatch, batch=3):
    """Latents fed straight to the guidance (the gradient is read before the VAE encoder)."""
    monkeypatch.setattr(prior, "encode_images", lambda x: x)
    return prior.encode_images(torch.randn(batch, 4, 16, 16)).requires_grad_(True)


def draws(guidance, shape, seed, progress=0.3):
    """The t and ε that the guidance draws from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    low, high = guidance.timestep_range(progress)
    t = torch.randint(low, high + 1, (shape[0],), generator=generator)
    return t, torch.randn(shape, generator=generator)


def randomise_lora(guidance, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in [*guidance.lora_parameters, *guidance.camera_embedding.parameters()]:
            p.copy_(0.05 * torch.randn(p.shape, generator=generator))


def test_zero_initialised_lora_is_the_prior(fresh_prior):
    guidance = make_guidance(GuidanceConfig(kind="vsd"), fresh_prior)
    prompts = PromptEmbeddings(fresh_prior, "a red cube")
    cams = cameras(3)
    noisy, t = torch.randn(3, 4, 16, 16), torch.tensor([100, 500, 900])
    cond, _ = prompts.for_cameras(cams.azimuth, cams.elevation)
    torch.testing.assert_close(
        guidance.lora_noise(noisy, t, cond, cams.c2w), fresh_prior.predict_noise(noisy, t, cond), atol=1e-6, rtol=0
    )


def test_vsd_gradient_is_weighted_prior_minus_lora(fresh_prior, monkeypatch):
    config = GuidanceConfig(kind="vsd", scale=7.5, vsd=VSDConfig(lora_steps=0))
    guidance = make_guidance(config, fresh_prior)
    randomise_lora(guidance)
    prompts = PromptEmbeddings(fresh_prior, "a red cube")
    cams, latents = cameras(3), latents_in(fresh_prior, monkeypatch)
    out = guidance(latents, cams, prompts, progress=0.3, generator=torch.Generator().manual_seed(3))
    out.loss.backward()

    t, noise = draws(guidance, latents.shape, 3)
    noisy = fresh_prior.add_noise(latents.detach(), noise, t)
    cond, uncond = prompts.for_cameras(cams.azimuth, cams.elevation)
    eps_c, eps_u = fresh_prior.predict_noise(noisy, t, cond), fresh_prior.predict_noise(noisy, t, uncond)
    eps_lora = guidance.lora_noise(noisy, t, cond, cams.c2w)
    assert (eps_lora - eps_c).abs().max() > 1e-3  # the randomised LoRA differs from the prior
    grad = (1 - fresh_prior.alphas_cumprod[t]).view(-1, 1, 1, 1) * (eps_u + 7.5 * (eps_c - eps_u) - eps_lora)
    torch.testing.assert_close(latents.grad, grad / 3, atol=1e-5, rtol=1e-4)


def test_esd_subtracts_the_mixed_lora_score(fresh_prior, monkeypatch):
    config = GuidanceConfig(kind="esd", scale=5.0, weighting="uniform", vsd=VSDConfig(lora_steps=0))
    config.esd.entropy_weight = 0.25
    guidance = make_guidance(config, fresh_prior)
    randomise_lora(guidance, seed=1)
    prompts = PromptEmbeddings(fresh_prior, "a blue torus")
    cams, latents = cameras(2), latents_in(fresh_prior, monkeypatch, batch=2)
    guidance(latents, cams, prompts, progress=0.0, generator=torch.Generator().manual_seed(4)).loss.backward()

    t, noise = draws(guidance, latents.shape, 4, progress=0.0)
    noisy = fresh_prior.add_noise(latents.detach(), noise, t)
    cond, uncond = prompts.for_cameras(cams.azimuth, cams.elevation)
    eps_hat = fresh_prior.predict_noise_cfg(noisy, t, cond, uncond, 5.0)[0]
    with_camera = guidance.lora_noise(noisy, t, cond, cams.c2w)
    without = guidance.lora_noise(noisy, t, cond, torch.zeros_like(cams.c2w))
    assert (with_camera - without).abs().max() > 1e-4
    grad = eps_hat - (0.25 * without + 0.75 * with_camera)
    torch.testing.assert_close(latents.grad, grad / 2, atol=1e-5, rtol=1e-4)


def test_one_lora_step_lowers_its_loss_on_a_fixed_batch(fresh_prior):
    guidance = make_guidance(GuidanceConfig(kind="vsd", vsd=VSDConfig(lora_lr=1e-2, camera_dropout=0.0)), fresh_prior)
    prompts = PromptEmbeddings(fresh_prior, "a red cube")
    cams = cameras(3)
    latents = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    cond, _ = prompts.for_cameras(cams.azimuth, cams.elevation)

    def loss() -> float:
        with torch.no_grad():
            return guidance.lora_loss(latents, cond, cams.c2w, torch.Generator().manual_seed(5)).item()

    before = loss()
    guidance.optimizer.zero_grad()
    guidance.lora_loss(latents, cond, cams.c2w, torch.Generator().manual_seed(5)).backward()
    guidance.optimizer.step()
    assert loss() < before


def test_vsd_works_on_a_v_prediction_prior(tiny_v_prior, tmp_path):
    prior = load_prior(PriorConfig(model=tiny_v_prior.config.model), tiny_v_prior.config.model, torch.device("cpu"))
    guidance = make_guidance(GuidanceConfig(kind="vsd"), prior)
    noisy, t, text = torch.randn(2, 4, 16, 16), torch.tensor([200, 700]), prior.encode_text(["a red cube"] * 2)
    c2w = cameras(2).c2w
    torch.testing.assert_close(
        guidance.lora_noise(noisy, t, text, c2w), prior.predict_noise(noisy, t, text), atol=1e-5, rtol=0
    )
    assert torch.isfinite(torch.tensor(guidance.train_lora(torch.randn(2, 4, 16, 16), text, c2w, None)))


def test_closing_vsd_leaves_the_plain_prior(fresh_prior):
    noisy, t, text = torch.randn(1, 4, 16, 16), torch.tensor([300]), fresh_prior.encode_text(["a red cube"])
    before = fresh_prior.predict_noise(noisy, t, text)
    guidance = make_guidance(GuidanceConfig(kind="vsd"), fresh_prior)
    randomise_lora(guidance)
    guidance.close()
    assert not any("lora" in name for name, _ in fresh_prior.unet.named_parameters())
    torch.testing.assert_close(fresh_prior.predict_noise(noisy, t, text), before)
    again = make_guidance(GuidanceConfig(kind="vsd"), fresh_prior)  # the next run on the same prior starts afresh
    torch.testing.assert_close(again.lora_noise(noisy, t, text, cameras(1).c2w), before, atol=1e-6, rtol=0)
    again.close()


def test_sjc_averages_scores_over_noise_draws(tiny_prior, monkeypatch):
    config = GuidanceConfig(kind="sjc", scale=10.0)
    config.sjc.samples = 2
    guidance = make_guidance(config, tiny_prior)
    prompts = PromptEmbeddings(tiny_prior, "a green cone")
    cams, latents = cameras(2), latents_in(tiny_prior, monkeypatch, batch=2)
    guidance(latents, cams, prompts, progress=0.5, generator=torch.Generator().manual_seed(6)).loss.backward()

    generator = torch.Generator().manual_seed(6)
    low, high = guidance.timestep_range(0.5)
    t = torch.randint(low, high + 1, (2,), generator=generator)
    first = torch.randn(latents.shape, generator=generator)
    second = torch.randn(latents.shape, generator=generator)
    cond, uncond = prompts.for_cameras(cams.azimuth, cams.elevation)
    a = tiny_prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    sigma = ((1 - a) / a).sqrt()
    scores = []
    for noise in (first, second):
        noisy = tiny_prior.add_noise(latents.detach(), noise, t)
        denoised = (
            latents.detach() + sigma * noise - sigma * tiny_prior.predict_noise_cfg(noisy, t, cond, uncond, 10.0)[0]
        )
        scores.append((denoised - latents.detach()) / sigma**2)  # PAAS: (D(z + σε) − z) / σ²
    torch.testing.assert_close(latents.grad, -(scores[0] + scores[1]) / 2 / 2, atol=1e-4, rtol=1e-4)


def test_ism_matches_the_guided_score_at_x_t_to_the_unconditional_one_at_x_s(tiny_prior, monkeypatch):
    """Each render's latents walked up the DDIM trajectory one by one, as LucidDreamer does: strides of 200 of the
    1000 timesteps to s = t − 80, one step to t; g = w(t)·(ε̂(x_t, t) − ε_∅(x_s, s)). No random noise enters."""
    config = GuidanceConfig(kind="ism", scale=7.5, ism=ISMConfig(interval=0.08, inversion_stride=0.2))
    guidance = make_guidance(config, tiny_prior)
    prompts = PromptEmbeddings(tiny_prior, "a blue sphere")
    cams, latents = cameras(3), latents_in(tiny_prior, monkeypatch)
    guidance(latents, cams, prompts, progress=0.2, generator=torch.Generator().manual_seed(4)).loss.backward()

    t, _ = draws(guidance, latents.shape, 4, progress=0.2)
    assert tiny_prior.num_train_timesteps == 1000 and t.max() > 300  # at least two strides for one render
    cond, uncond = prompts.for_cameras(cams.azimuth, cams.elevation)
    alphas = tiny_prior.alphas_cumprod

    def ddim(x, e, k, k_next):
        clean = (x - (1 - alphas[k]).sqrt() * e) / alphas[k].sqrt()
        return alphas[k_next].sqrt() * clean + (1 - alphas[k_next]).sqrt() * e

    def noise(x, k, text):
        return tiny_prior.predict_noise(x, torch.tensor([k]), text)

    expected = []
    for i in range(3):
        u, c, t_i = uncond[i : i + 1], cond[i : i + 1], int(t[i])
        s, x, k = max(t_i - 80, 0), latents.detach()[i : i + 1], 0
        while k < s:
            x, k = ddim(x, noise(x, k, u), k, min(k + 200, s)), min(k + 200, s)
        eps_s = noise(x, s, u)
        x_t = ddim(x, eps_s, s, t_i)
        guided = noise(x_t, t_i, u) + 7.5 * (noise(x_t, t_i, c) - noise(x_t, t_i, u))
        expected.append((1 - alphas[t_i]) * (guided - eps_s))
    torch.testing.assert_close(latents.grad, torch.cat(expected) / 3, atol=1e-5, rtol=1e-4)


def test_perp_neg_removes_only_the_perpendicular_part_of_the_negative():
    eps_u = torch.zeros(2, 1, 1, 2)
    eps_c = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2).expand(2, 1, 1, 2)
    parallel = torch.tensor([3.0, 0.0]).view(1, 1, 1, 2).expand(2, 1, 1, 2)
    mixed = torch.tensor([2.0, 1.0]).view(1, 1, 1, 2).expand(2, 1, 1, 2)
    weight = torch.tensor([1.0, 0.5])
    torch.testing.assert_close(perp_neg_combine(eps_c, eps_u, parallel, weight, 7.0), 7.0 * eps_c)
    expected = torch.stack([torch.tensor([7.0, -7.0]), torch.tensor([7.0, -3.5])]).view(2, 1, 1, 2)
    torch.testing.assert_close(perp_neg_combine(eps_c, eps_u, mixed, weight, 7.0), expected)


def test_perp_neg_leaves_front_views_alone(tiny_prior):
    plain = make_guidance(GuidanceConfig(scale=20.0), tiny_prior)
    perp = make_guidance(GuidanceConfig(scale=20.0, perp_neg=PerpNegConfig(enabled=True)), tiny_prior)
    prompts = PromptEmbeddings(tiny_prior, "a red cube")
    cams = cameras(3)  # front, side, back
    noisy, t = torch.randn(3, 4, 16, 16), torch.tensor([400, 400, 400])
    a, b = plain.guided_noise(noisy, t, cams, prompts, 20.0), perp.guided_noise(noisy, t, cams, prompts, 20.0)
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=0)
    assert (a[1:] - b[1:]).abs().amax(dim=(1, 2, 3)).min() > 1e-4


@pytest.mark.parametrize(
    "override, message",
    [
        ("guidance.vsd.lora_rank=0", "lora_rank must be > 0"),
        ("guidance.kind=magic", "must be one of"),
        ("guidance.sjc.samples=0", "sjc.samples must be > 0"),
        ("guidance.ism.interval=0", "ism.interval must lie in (0, 1)"),
        ("train.particles=0", "particles must be >= 1"),
    ],
)
def test_bad_guidance_settings_are_one_line_errors(tiny_prior_dir, tmp_path, capsys, override, message):
    out = tmp_path / "run"
    code = text3d_main(["a red cube", "--model", str(tiny_prior_dir), "--out", str(out), override])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()
