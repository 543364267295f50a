"""Motion quality of text2video on the embedded models, graded by an independent judge.

    python bench/motion_quality.py [--clips 2] [--steps 25] [--guidance 4] [--model embedded]
                                   [--motion-adapter embedded]
        [--device cpu|cuda]

Prompts: six colour/shape pairs (every colour, every shape) × the six motions = 36 prompts, ``--clips`` clips
each (seeds 0…), sampled in animate mode. The judge (dreamlift.embedded.motion_judge: background mask,
centroid and area tracks, hue; no network) says which way the object moved, its colour, and whether it
flickers. A clip passes when all three are as prompted. Then: long clips (16 frames, twice the trained
length, in sliding windows) for one prompt per motion, with the frame-to-frame change at window seams
against elsewhere; and zero-shot mode with a +x motion vector on the motion-free prompts.
"""

from __future__ import annotations

import argparse
import time

import torch

from dreamlift.embedded.motion_judge import judge_clip
from dreamlift.embedded.motions import MOTIONS, motion_caption
from dreamlift.embedded.shapes import caption
from dreamlift.loading import load_motion_adapter, load_prior_model
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.video.config import Text2VideoConfig
from dreamlift.video.inflation import frame_windows
from dreamlift.video.sampler import VideoSampler
from dreamlift.video.temporal import TemporalAdapter

PAIRS = [
    ("red", "cube"),
    ("orange", "cone"),
    ("yellow", "sphere"),
    ("green", "cylinder"),
    ("blue", "torus"),
    ("purple", "sphere"),
]
"""Colour/shape pairs covering every colour and every shape."""


def sample(model: DiffusionPrior, adapter: TemporalAdapter, **settings) -> torch.Tensor:
    """Videos B×F×3×H×W of the Text2VideoConfig ``settings``, sampled without writing anything."""
    config = Text2VideoConfig(**settings)
    return VideoSampler(config, model, adapter if config.mode == "animate" else None, run_dir=".").sample(
        show_progress=False
    )


def grade(clip: torch.Tensor, colour: str, motion: str) -> tuple[bool, str]:
    verdict = judge_clip(clip)
    passed = verdict.motion == motion and verdict.colour == colour and verdict.colour_steady and not verdict.flicker
    steady, flicker = "" if verdict.colour_steady else "~", "/flicker" if verdict.flicker else ""
    seen = f"{verdict.motion}/{verdict.colour}{steady}{flicker}"
    return passed, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--motion-adapter", default="embedded")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=Text2VideoConfig.guidance_scale)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    base = Text2VideoConfig(motion_adapter=args.motion_adapter)
    base.prior.model = args.model
    prior = load_prior_model(base.prior, torch.device(args.device))
    adapter = load_motion_adapter(base.motion_adapter, prior.unet)
    common = {"steps": args.steps, "guidance_scale": args.guidance, "prior": base.prior}

    start, passed, total = time.time(), 0, 0
    per_motion = {m: [0, 0] for m in MOTIONS}
    print(f"{'prompt':<34}{'pass':>6}   judge saw (motion/colour per clip)")
    for colour, shape in PAIRS:
        for motion in MOTIONS:
            prompt = motion_caption(colour, shape, motion)
            videos = sample(prior, adapter, prompt=prompt, videos=args.clips, **common)
            grades = [grade(clip, colour, motion) for clip in videos]
            ok = sum(g[0] for g in grades)
            passed, total = passed + ok, total + len(grades)
            per_motion[motion][0] += ok
            per_motion[motion][1] += len(grades)
            print(f"{prompt:<34}{ok:>3}/{len(grades)}   {', '.join(g[1] for g in grades)}")
    print(f"\nanimate: {passed}/{total} clips pass ({passed / total:.0%}) in {time.time() - start:.0f} s")
    print("per motion: " + ", ".join(f"{m} {p}/{n}" for m, (p, n) in per_motion.items()))

    print("\nlong clips: 16 frames in windows of the trained length")
    window = adapter.config.trained_frames
    windows = frame_windows(16, window, max(1, window // 2))
    seams = {w.start for w in windows[1:]} | {w.stop for w in windows[:-1]}  # frames where the covering windows change
    long_passed, seam_change, other_change = 0, [], []
    for (colour, shape), motion in zip(PAIRS, MOTIONS):
        prompt = motion_caption(colour, shape, motion)
        clip = sample(prior, adapter, prompt=prompt, frames=16, **common)[0]
        ok, seen = grade(clip, colour, motion)
        long_passed += ok
        change = (clip[1:] - clip[:-1]).abs().mean(dim=(1, 2, 3))  # change into frame k + 1
        is_seam = torch.tensor([k + 1 in seams for k in range(15)])
        seam_change.append(change[is_seam].mean())
        other_change.append(change[~is_seam].mean())
        print(f"{prompt:<34}{'pass' if ok else 'FAIL':>6}   {seen}")
    ratio = torch.stack(seam_change).mean() / torch.stack(other_change).mean()
    print(f"long clips: {long_passed}/{len(MOTIONS)} pass; frame change at window seams / elsewhere = {ratio:.2f}")

    print("\nzero-shot: motion vector (+0.03, 0) per frame, prompts without motion words")
    zero_passed = 0
    for colour, shape in PAIRS:
        prompt = caption(colour, shape)
        clip = sample(prior, None, prompt=prompt, mode="zero-shot", **common)[0]
        verdict = judge_clip(clip)
        zero_passed += verdict.motion == "moving right"
        print(f"{prompt:<34}{verdict.motion:>14}   travel right {verdict.travel[0]:+.2f} of the width")
    print(f"zero-shot: {zero_passed}/{len(PAIRS)} move right")


if __name__ == "__main__":
    main()
