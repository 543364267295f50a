"""text2video: temporal layers, inflation, sampling, zero-shot mode, training and the CLI, on tiny random models."""

from __future__ import annotations

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from diffusers import UNetMotionModel
from PIL import Image

from dreamlift.cli import text2video_main
from dreamlift.training.clips import reversed_caption
from dreamlift.video.config import Text2VideoConfig
from dreamlift.video.inflation import InflatedUNet, frame_windows, window_weights
from dreamlift.video.sampler import VideoSampler
from dreamlift.video.temporal import TemporalAdapter, frame_basis, load_temporal_adapter
from dreamlift.video.zero_shot import CrossFrameAttnProcessor, cross_frame_attention, translate_latents


def frame_by_frame(unet, sample, t, text):
    """The 2D U-Net applied to each frame of B×C×F×h×w latents (the oracle for zero-initialised layers)."""
    b, c, f, h, w = sample.shape
    flat = sample.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    out = unet(flat, t, encoder_hidden_states=text.repeat_interleave(f, 0)).sample
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def randomised(adapter: TemporalAdapter, seed: int = 0) -> TemporalAdapter:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=generator))
    return adapter


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 5, 16, 16, generator=generator), torch.randn(2, 16, 32, generator=generator)


@pytest.mark.parametrize(
    "conditioning",
    [
        {"text_attention": False},
        {"text_attention": True},
        {"text_attention": True, "prompt_embedding_dim": 8},
        {"text_attention": True, "prompt_embedding_dim": 8, "prompt_reads_tokens": True},
    ],
)
def test_zero_initialised_layers_equal_the_image_model(tiny_prior, inputs, conditioning):
    unet = tiny_prior.unet
    adapter = TemporalAdapter.for_unet(unet, num_attention_heads=2, **conditioning)
    sample, text = inputs
    tokens = torch.randn(text.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), InflatedUNet(unet, adapter) as inflated:
        video = inflated(sample, torch.tensor(400), text, tokens)
    expected = frame_by_frame(unet, sample, 400, text)
    assert video.shape == sample.shape
    torch.testing.assert_close(video, expected, atol=1e-5, rtol=0)


def test_hooks_come_off(tiny_prior, inputs):
    unet = tiny_prior.unet
    sample, text = inputs
    flat = sample[:, :, 0]
    before = unet(flat, 400, encoder_hidden_states=text).sample
    with InflatedUNet(unet, randomised(TemporalAdapter.for_unet(unet, num_attention_heads=2))):
        pass
    torch.testing.assert_close(unet(flat, 400, encoder_hidden_states=text).sample, before)


def test_animatediff_motion_adapter_round_trips(tiny_prior, inputs, tmp_path):
    """Ours → MotionAdapter folder → ours gives the same weights, and the same output as diffusers' UNetMotionModel."""
    unet = tiny_prior.unet
    ours = randomised(TemporalAdapter.for_unet(unet, text_attention=False, num_attention_heads=2))
    ours.to_motion_adapter().save_pretrained(tmp_path / "adapter")
    loaded = load_temporal_adapter(tmp_path / "adapter")
    for (name, a), b in zip(ours.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    sample, text = inputs
    reference = UNetMotionModel.from_unet2d(unet, loaded.to_motion_adapter()).eval()
    with torch.no_grad(), InflatedUNet(unet, loaded) as inflated:
        video = inflated(sample, torch.tensor(400), text)
        expected = reference(sample, 400, encoder_hidden_states=text.repeat_interleave(sample.shape[2], 0)).sample
    assert (video - frame_by_frame(unet, sample, 400, text)).abs().max() > 1e-2  # the layers do something
    torch.testing.assert_close(video, expected, atol=1e-5, rtol=1e-4)


def test_frame_basis_is_a_constant_then_a_falling_ramp():
    basis = frame_basis(8, 3)
    assert basis.shape == (3, 8) and torch.equal(basis[0], torch.ones(8))
    assert (basis[1][1:] < basis[1][:-1]).all() and torch.allclose(basis[1], -basis[1].flip(0))
    assert torch.allclose(basis @ basis.T, torch.diag(torch.tensor([8.0, 4.0, 4.0])), atol=1e-5)  # orthogonal


def test_prompt_term_is_the_pooled_prompt_projected_and_spread_over_frames(tiny_prior, inputs):
    """What the hook adds to a temporal layer's frame tokens: the same at every position, per frame the basis-weighted
    projection of the pooled prompt — so a prompt can push the first and the last frame in opposite directions."""
    unet = tiny_prior.unet
    adapter = randomised(TemporalAdapter.for_unet(unet, num_attention_heads=2, prompt_embedding_dim=8))
    temporal = adapter.down_blocks[0].motion_modules[0]
    projection = adapter.down_blocks[0].prompt_projections[0]
    added = []

    def capture(module, args, kwargs, output):  # diffusers calls proj_in(input=…)
        added.append(output - torch.nn.functional.linear(kwargs["input"], module.weight, module.bias))

    sample, text = inputs
    with torch.no_grad(), InflatedUNet(unet, adapter) as inflated:
        handle = temporal.proj_in.register_forward_hook(capture, with_kwargs=True)
        inflated(sample, torch.tensor(400), text)
        handle.remove()
        weights = projection(adapter.prompt_pooling(text)).view(2, 2, -1)  # B×K×C
    batch, frames = sample.shape[0], sample.shape[2]
    term = added[0].reshape(batch, -1, frames, weights.shape[-1])  # B×(H·W)×F×C
    expected = torch.einsum("kf,bkc->bfc", frame_basis(frames, 2), weights)
    torch.testing.assert_close(term, expected[:, None].expand_as(term), atol=1e-5, rtol=1e-5)
    assert (expected[:, 0] - expected[:, -1]).abs().max() > 1e-3  # the ramp makes first and last frame differ


def test_token_route_starts_at_zero_and_tells_apart_words_with_equal_text_states(tiny_prior, inputs):
    """Adding the token-embedding route to trained layers changes nothing until it is trained; once trained, two
    prompts whose text states are equal but whose words differ get different prompt vectors."""
    unet = tiny_prior.unet
    trained = randomised(TemporalAdapter.for_unet(unet, num_attention_heads=2, prompt_embedding_dim=8)).eval()
    extended = trained.with_prompt_tokens()
    assert extended.config.prompt_reads_tokens and not trained.config.prompt_reads_tokens
    assert extended.with_prompt_tokens() is extended
    sample, text = inputs
    tokens = torch.randn(text.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with InflatedUNet(unet, trained) as inflated:
            before = inflated(sample, torch.tensor(400), text)
        with InflatedUNet(unet, extended) as inflated:
            after = inflated(sample, torch.tensor(400), text, tokens)
        torch.testing.assert_close(after, before, atol=1e-6, rtol=0)

        pooling = randomised(extended, seed=1).prompt_pooling
        same_text = text[:1].expand(2, -1, -1)
        assert (pooling(same_text, tokens)[0] - pooling(same_text, tokens)[1]).abs().max() > 1e-3
        with pytest.raises(ValueError, match="reads token embeddings"):
            pooling(same_text)
    with pytest.raises(ValueError, match="no prompt embedding"):
        TemporalAdapter.for_unet(unet, num_attention_heads=2).with_prompt_tokens()


def test_prompt_embedding_needs_text_states():
    with pytest.raises(ValueError, match="needs the text width"):
        TemporalAdapter(block_out_channels=(32, 64), prompt_embedding_dim=8)
    from dreamlift.video.train import TrainMotionConfig

    with pytest.raises(ValueError, match="needs text_attention"):
        TrainMotionConfig(text_attention=False)
    with pytest.raises(ValueError, match="needs a prompt embedding"):
        TemporalAdapter(block_out_channels=(32, 64), cross_attention_dim=32, prompt_reads_tokens=True)
    with pytest.raises(ValueError, match="prompt_reads_tokens needs"):
        TrainMotionConfig(prompt_embedding_dim=0)


def test_adapter_that_does_not_fit_is_refused(tiny_prior):
    adapter = TemporalAdapter(block_out_channels=(32, 64), layers_per_block=1, num_attention_heads=2, norm_num_groups=8)
    with pytest.raises(ValueError, match="does not fit"):
        adapter.check_fits(tiny_prior.unet)


def test_frame_windows_cover_every_frame_and_blend_symmetrically():
    assert frame_windows(6, 8, 4) == [range(6)]
    assert frame_windows(10, 4, 2) == [range(0, 4), range(2, 6), range(4, 8), range(6, 10)]
    assert frame_windows(9, 4, 3) == [range(0, 4), range(3, 7), range(5, 9)]
    assert window_weights(4).tolist() == [1, 2, 2, 1]


def test_windowed_layers_match_unwindowed_when_one_window_holds_the_clip(tiny_prior, inputs):
    unet = tiny_prior.unet
    adapter = randomised(TemporalAdapter.for_unet(unet, num_attention_heads=2, trained_frames=5))
    sample, text = inputs
    with torch.no_grad():
        with InflatedUNet(unet, adapter) as whole:
            one = whole(sample, torch.tensor(300), text)
        with InflatedUNet(unet, adapter, window=3, stride=1) as windowed:
            blended = windowed(sample, torch.tensor(300), text)
    assert blended.shape == one.shape and torch.isfinite(blended).all()
    assert not torch.allclose(blended, one)  # windows see fewer frames, so they differ


def run_pipeline(prior, tmp_path, name, **overrides):
    config = Text2VideoConfig(**{"prompt": "a red cube moving left", "steps": 3, "frames": 4, **overrides})
    adapter = randomised(TemporalAdapter.for_unet(prior.unet, num_attention_heads=2, trained_frames=4))
    return VideoSampler(config, prior, adapter if config.mode == "animate" else None, tmp_path / name)


def test_videos_in_one_batch_are_the_single_videos_of_their_seeds(tiny_prior, tmp_path):
    batch = run_pipeline(tiny_prior, tmp_path, "batch", videos=2, seed=5).sample(show_progress=False)
    second = run_pipeline(tiny_prior, tmp_path, "single", videos=1, seed=6).sample(show_progress=False)
    assert batch.shape == (2, 4, 3, 32, 32)
    assert (batch[0] - batch[1]).abs().mean() > 1e-3
    torch.testing.assert_close(batch[1], second[0], atol=2e-4, rtol=0)


def test_run_writes_mp4_gif_frames_and_config(tiny_prior, tmp_path):
    pipeline = run_pipeline(tiny_prior, tmp_path, "run", fps=10, save_frames=True)
    metrics = pipeline.run()
    folder = tmp_path / "run"
    video = iio.imread(folder / "video.mp4", index=None)
    assert video.shape == (4, 32, 32, 3)
    with Image.open(folder / "video.gif") as gif:
        assert gif.n_frames == 4
        assert gif.info["duration"] == 100
    assert len(list((folder / "frames" / "video").glob("*.png"))) == 4
    assert "seed: 0" in (folder / "config.yaml").read_text()
    assert json.loads((folder / "metrics.json").read_text())["seeds"] == metrics["seeds"] == [0]


def test_long_clips_use_temporal_windows_and_rescheduled_noise(tiny_prior, tmp_path):
    pipeline = run_pipeline(tiny_prior, tmp_path, "long", frames=10)
    noise = pipeline.initial_noise((1, 4, 10, 16, 16), window=4)
    first_window = {tuple(noise[0, :, i].flatten()[:4].tolist()) for i in range(4)}
    assert all(tuple(noise[0, :, i].flatten()[:4].tolist()) in first_window for i in range(4, 10))
    videos = pipeline.sample(show_progress=False)
    assert videos.shape == (1, 10, 3, 32, 32) and torch.isfinite(videos).all()


def centroid(x: torch.Tensor) -> tuple[float, float]:
    """(column, row) centre of mass of a non-negative h×w map."""
    rows, cols = torch.meshgrid(torch.arange(x.shape[0]), torch.arange(x.shape[1]), indexing="ij")
    return float((x * cols).sum() / x.sum()), float((x * rows).sum() / x.sum())


def test_translate_latents_moves_content_right_and_up():
    latent = torch.zeros(1, 1, 16, 16)
    latent[..., 6:10, 4:8] = 1
    frames = translate_latents(latent, 3, motion=(0.125, 0.0))  # 2 latent pixels right per frame
    xs = [centroid(frames[0, 0, k])[0] for k in range(3)]
    assert xs == pytest.approx([5.5, 7.5, 9.5], abs=1e-4)
    up = translate_latents(latent, 2, motion=(0.0, 0.125))
    assert centroid(up[0, 0, 1])[1] == pytest.approx(centroid(latent[0, 0])[1] - 2, abs=1e-4)


def test_cross_frame_attention_keeps_the_first_frame_and_ties_the_others_to_it(tiny_prior):
    unet = tiny_prior.unet
    generator = torch.Generator().manual_seed(1)
    frames = torch.randn(3, 4, 16, 16, generator=generator)
    text = torch.randn(1, 16, 32, generator=generator).expand(3, -1, -1)
    plain = unet(frames, 500, encoder_hidden_states=text).sample
    with cross_frame_attention(unet, num_frames=3):
        tied = unet(frames, 500, encoder_hidden_states=text).sample
    torch.testing.assert_close(tied[0], plain[0], atol=1e-5, rtol=0)
    assert (tied[1:] - plain[1:]).abs().max() > 1e-4
    assert not any(isinstance(p, CrossFrameAttnProcessor) for p in unet.attn_processors.values())


def test_zero_shot_samples_without_temporal_layers(tiny_prior, tmp_path):
    pipeline = run_pipeline(tiny_prior, tmp_path, "zero", mode="zero-shot", steps=6)
    renoise, translate = pipeline.zero_shot_indices(torch.tensor([999, 833, 666, 500, 333, 166]))
    assert 0 <= renoise < translate
    videos = pipeline.sample(show_progress=False)
    assert videos.shape == (1, 4, 3, 32, 32) and torch.isfinite(videos).all()


def test_training_updates_only_the_temporal_layers_and_resumes(tiny_prior, tmp_path):
    from dreamlift.video.train import MotionTrainer, TrainMotionConfig

    unet_before = {k: v.clone() for k, v in tiny_prior.unet.state_dict().items()}
    config = TrainMotionConfig(num_clips=3, num_frames=4, steps=2, batch=2, num_attention_heads=2, checkpoint_every=1)
    MotionTrainer(config, tiny_prior, tmp_path / "work", tmp_path / "motion").run()
    adapter = load_temporal_adapter(tmp_path / "motion")
    assert adapter.config.trained_frames == 4 and adapter.config.cross_attention_dim == 32
    assert adapter.config.prompt_embedding_dim == 128 and adapter.config.prompt_reads_tokens
    assert adapter.down_blocks[0].motion_modules[0].proj_out.weight.abs().max() > 0
    assert adapter.prompt_pooling.token_to_value.weight.abs().max() > 0
    for key, value in tiny_prior.unet.state_dict().items():
        assert torch.equal(value, unet_before[key]), key
    log = json.loads((tmp_path / "work" / "log.json").read_text())
    assert log["stages"]["temporal"]["steps"] == 2
    mtime = (tmp_path / "motion" / "training.json").stat().st_mtime_ns
    MotionTrainer(config, tiny_prior, tmp_path / "work", tmp_path / "motion").run()  # everything done: a no-op
    assert (tmp_path / "motion" / "training.json").stat().st_mtime_ns == mtime


def test_training_the_prompt_route_of_layers_without_token_embeddings(tiny_prior, tmp_path):
    """init_from layers without the token route adds it; trainable=prompt trains only the prompt pooling and
    projections, and leaves the temporal transformers as they were."""
    from dreamlift.video.train import MotionTrainer, TrainMotionConfig

    start = randomised(TemporalAdapter.for_unet(tiny_prior.unet, num_attention_heads=2, prompt_embedding_dim=8))
    start.save_pretrained(tmp_path / "start")
    config = TrainMotionConfig(
        num_clips=2, num_frames=4, steps=2, batch=2, init_from=str(tmp_path / "start"), trainable="prompt"
    )
    MotionTrainer(config, tiny_prior, tmp_path / "work", tmp_path / "motion").run()
    trained = load_temporal_adapter(tmp_path / "motion")
    assert trained.config.prompt_reads_tokens and trained.config.prompt_embedding_dim == 8
    assert trained.prompt_pooling.token_to_value.weight.abs().max() > 0  # trained on from zero
    assert not torch.equal(trained.prompt_pooling.queries, start.prompt_pooling.queries)
    assert not torch.equal(
        trained.up_blocks[0].prompt_projections[0].weight, start.up_blocks[0].prompt_projections[0].weight
    )
    route = {id(p) for p in trained.prompt_route_parameters()}
    after = {name: p for name, p in trained.named_parameters() if id(p) not in route}
    assert after and all(".motion_modules." in name for name in after)
    for name, before in start.named_parameters():
        if name in after:
            assert torch.equal(before, after[name]), name
    with pytest.raises(ValueError, match="trainable must be"):
        TrainMotionConfig(trainable="temporal")


def test_clip_folder_reads_captioned_videos(tmp_path):
    from dreamlift.training.clips import read_clip_folder

    frames = np.zeros((6, 40, 48, 3), np.uint8)
    for k in range(6):
        frames[k, 10:20, 12 + 2 * k : 24 + 2 * k, 0] = 255
    iio.imwrite(tmp_path / "a.gif", frames, extension=".gif", duration=100)
    (tmp_path / "a.txt").write_text("a red cube moving left\n")
    iio.imwrite(tmp_path / "uncaptioned.gif", frames, extension=".gif", duration=100)
    clips = read_clip_folder(tmp_path, num_frames=4, resolution=32)
    assert clips.frames.shape == (1, 4, 3, 32, 32) and clips.captions == ["a red cube moving left"]
    assert clips.frames[0, 0, 0].max() > 200


@pytest.mark.parametrize(
    "argv, message",
    [
        (["a red cube", "--frames", "0"], "frames must be between 1 and 256 (got 0)"),
        (["a red cube", "--fps", "0"], "fps must be between 1 and 100 (got 0)"),
        (["a red cube", "--mode", "sideways"], "invalid choice"),
        (["  "], "prompt is empty"),
        (["a red cube", "--motion-adapter", "/no/such/adapter"], "motion adapter not found"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tiny_prior_dir, tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    code = text2video_main([*argv, "--model", str(tiny_prior_dir), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_refuses_an_adapter_that_does_not_fit(tiny_prior_dir, tmp_path, capsys):
    adapter = TemporalAdapter(block_out_channels=(32, 64), layers_per_block=1, num_attention_heads=2, norm_num_groups=8)
    adapter.save_pretrained(tmp_path / "adapter")
    code = text2video_main(
        [
            "a red cube",
            "--model",
            str(tiny_prior_dir),
            "--motion-adapter",
            str(tmp_path / "adapter"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2 and "does not fit" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_writes_a_zero_shot_video(tiny_prior_dir, tmp_path):
    code = text2video_main(
        [
            "a red cube moving right",
            "--model",
            str(tiny_prior_dir),
            "--mode",
            "zero-shot",
            "--steps",
            "4",
            "--frames",
            "3",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    assert iio.imread(tmp_path / "run" / "video.mp4", index=None).shape[0] == 3


def test_motion_judge_agrees_with_the_ground_truth_of_procedural_clips():
    from dreamlift.embedded.motion_judge import judge_clip
    from dreamlift.embedded.motions import render_motion_clips

    clips = render_motion_clips(12, 6, seed=7, resolution=48)
    for frames, caption in zip(clips.frames, clips.captions):
        verdict = judge_clip(frames.float() / 255)
        assert caption.endswith(verdict.motion) and f" {verdict.colour} " in caption, (caption, verdict)
        assert verdict.colour_steady and not verdict.flicker, (caption, verdict)
        backwards = judge_clip(frames.flip(0).float() / 255)
        assert reversed_caption(caption).endswith(backwards.motion), (caption, backwards)


def test_reversed_caption_swaps_the_motion_phrase_only_at_the_end():
    assert reversed_caption("a red cube moving left") == "a red cube moving right"
    assert reversed_caption("an orange cone shrinking") == "an orange cone growing"
    assert reversed_caption("a growing plant in a pot") is None
    assert reversed_caption("a red cube") is None


def test_motion_judge_sees_a_static_and_a_flickering_clip():
    from dreamlift.embedded.motion_judge import judge_clip

    frames = torch.full((6, 3, 32, 32), 0.9)
    frames[:, :, 10:20, 10:20] = torch.tensor([0.85, 0.08, 0.08])[:, None, None]
    static = judge_clip(frames)
    assert static.motion == "static" and static.colour == "red" and not static.flicker
    frames[::2, :, 10:20, 10:20] = 0.9
    frames[::2, :, 12:14, 12:14] = torch.tensor([0.85, 0.08, 0.08])[:, None, None]
    assert judge_clip(frames).flicker


def test_cli_trains_temporal_layers_and_refuses_a_missing_clip_folder(tiny_prior_dir, tmp_path, capsys):
    args = [
        "--model",
        str(tiny_prior_dir),
        "num_clips=2",
        "num_frames=4",
        "steps=1",
        "batch=1",
        "num_attention_heads=2",
    ]
    assert text2video_main(["train", "--out", str(tmp_path / "motion"), *args]) == 0
    assert load_temporal_adapter(tmp_path / "motion").config.trained_frames == 4
    capsys.readouterr()
    assert (
        text2video_main(["train", "--clips", str(tmp_path / "no-clips"), "--out", str(tmp_path / "other"), *args]) == 2
    )
    assert "clip folder not found" in capsys.readouterr().err


def test_loss_weights_of_min_snr_and_of_the_clean_sample():
    from dreamlift.training.schedules import clean_sample_weights, min_snr_weights

    alphas = torch.tensor([0.8, 0.5, 0.2])  # SNR 4, 1, 0.25
    t = torch.arange(3)
    assert torch.allclose(min_snr_weights(alphas, t, 2.0), torch.tensor([0.5, 1.0, 1.0]))
    assert torch.allclose(clean_sample_weights(alphas, t, 3.0), torch.tensor([0.25, 1.0, 3.0]))
    assert torch.allclose(clean_sample_weights(alphas, t, 9.0, "v_prediction"), torch.tensor([0.2, 0.5, 0.8]))


def test_warmup_cosine_learning_rate():
    from dreamlift.training.schedules import set_warmup_cosine_lr

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    rates = []
    for step in (0, 9, 50, 100):
        set_warmup_cosine_lr(optimizer, 2.0, step, steps=100, warmup=10)
        rates.append(optimizer.param_groups[0]["lr"])
    cosine_at_9 = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.09))
    assert rates == pytest.approx([2.0 * 0.1 * 1.0, 2.0 * cosine_at_9, 2.0 * 0.55, 2.0 * 0.1])
    set_warmup_cosine_lr(optimizer, 2.0, 0, steps=10000)  # default warm-up: at most 100 steps
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2.0 / 100)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--frames", "1000000"], "frames must be between 1 and 256 (got 1000000)"),
        (["--videos", "100000"], "videos must be between 1 and 64 (got 100000)"),
        (["--videos", "8", "--frames", "200"], "videos × frames must be at most 1024 (got 8 × 200)"),
        (["--steps", "1001"], "steps must be between 1 and 1000 (got 1001)"),
        (["--fps", "1000"], "fps must be between 1 and 100 (got 1000)"),
        (["decode_chunk=100000"], "decode_chunk must be between 1 and 1024 (got 100000)"),
        (["--mode", "zero-shot", "--steps", "1"], "zero-shot mode needs at least 2 steps"),
        (["--seed", "99999999999999999999"], "seed must be a whole number between 0 and 4294967295"),
        (["--seed", "-3"], "seed must be a whole number between 0 and 4294967295 (got -3)"),
    ],
)
def test_cli_sizes_and_seeds_out_of_range_are_one_line_and_write_nothing(
    tiny_prior_dir, tmp_path, capsys, argv, message
):
    out = tmp_path / "run"
    code = text2video_main(["a ball", *argv, "--model", str(tiny_prior_dir), "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("text2video: error:") and message in err
    assert not out.exists()


def test_the_largest_allowed_sizes_are_valid_and_the_defaults_unchanged():
    from dreamlift.video.config import MAX_BATCH_FRAMES, MAX_FRAMES, MAX_STEPS

    config = Text2VideoConfig(frames=MAX_FRAMES, videos=MAX_BATCH_FRAMES // MAX_FRAMES, steps=MAX_STEPS, fps=100)
    assert config.videos * config.frames == MAX_BATCH_FRAMES
    default = Text2VideoConfig()
    assert (default.frames, default.fps, default.steps, default.videos, default.decode_chunk) == (8, 8, 25, 1, 16)
