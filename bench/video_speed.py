"""Speed of text2video's animate mode against diffusers' AnimateDiffPipeline built from the same components.

    python bench/video_speed.py [--frames 8] [--steps 25] [--repeats 3] [--device cpu]

Both sample one video of the embedded prior at its size, with the same scheduler, steps, frames and CFG, and
the same temporal layers: a TemporalAdapter-compatible set (no text attention, random weights) that ours loads
into an InflatedUNet and diffusers into a UNetMotionModel. Runs alternate; the median of each is reported,
with the ratio ours / diffusers (below 1: ours is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import AnimateDiffPipeline

from dreamlift.loading import load_prior_model
from dreamlift.priors.diffusion import quiet_libraries
from dreamlift.video.config import Text2VideoConfig
from dreamlift.video.sampler import VideoSampler
from dreamlift.video.temporal import TemporalAdapter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    config = Text2VideoConfig(prompt="a red cube moving left", frames=args.frames, steps=args.steps, device=args.device)
    config.prior.dtype = "float32"
    prior = load_prior_model(config.prior, device)
    torch.manual_seed(0)
    adapter = TemporalAdapter.for_unet(
        prior.unet, text_attention=False, num_attention_heads=4, trained_frames=args.frames
    )
    with torch.no_grad():
        for p in adapter.parameters():
            p.normal_(0, 0.02)
    ours = VideoSampler(config, prior, adapter, run_dir=".")
    with quiet_libraries():
        theirs = AnimateDiffPipeline(
            vae=prior.vae,
            text_encoder=prior.text_encoder,
            tokenizer=prior.tokenizer,
            unet=prior.unet,
            motion_adapter=adapter.to_motion_adapter(),
            scheduler=prior.scheduler,
        ).to(device)  # builds its UNetMotionModel from the U-Net and the adapter
    theirs.set_progress_bar_config(disable=True)
    size = prior.image_size

    def run_ours() -> None:
        ours.sample(show_progress=False)

    def run_theirs() -> None:
        theirs(
            prompt=config.prompt,
            num_frames=args.frames,
            height=size,
            width=size,
            num_inference_steps=args.steps,
            guidance_scale=config.guidance_scale,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        )

    timings: dict[str, list[float]] = {"ours": [], "diffusers": []}
    for run in (run_ours, run_theirs):
        run()  # warm-up
    for _ in range(args.repeats):
        for name, run in (("ours", run_ours), ("diffusers", run_theirs)):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.no_grad():
                run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings[name].append(time.perf_counter() - start)
    ours_s, theirs_s = statistics.median(timings["ours"]), statistics.median(timings["diffusers"])
    print(f"{args.frames} frames, {args.steps} steps, {size}px, {device}, {torch.get_num_threads()} threads")
    print(f"{'ours (InflatedUNet)':<28}{ours_s:8.2f} s")
    print(f"{'diffusers AnimateDiffPipeline':<28}{theirs_s:8.2f} s")
    print(f"ratio ours / diffusers: {ours_s / theirs_s:.2f}")


if __name__ == "__main__":
    main()
