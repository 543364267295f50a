"""The presets for Stable-Diffusion-sized priors at full size: a model folder with SD-1.5's published configs and
random weights (U-Net 860 M parameters, its VAE and CLIP text encoder; the embedded prior's tokenizer, whose ids
fit), and two steps of each preset on it, each in a process of its own, with its seconds per step and peak memory.

    python bench/sd_presets.py --model /tmp/sd15-random               # on this CPU (builds the folder once)
    python bench/sd_presets.py --model /tmp/sd15-random --device cuda --dtype float16   # on a GPU

It checks the wiring (render, latent and texture sizes, memory) and times a step; the weights are random, so the
shapes mean nothing. The export is cut to a coarse mesh without turntable or redrawing, and the refine stage's
SDF fit to 30 steps, so that the table shows the steps themselves.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

PRESETS = ["dreamfusion-sd", "magic3d-sd", "prolificdreamer-sd", "dreamgaussian-sd"]
CUT = ["export.resolution=64", "export.turntable_frames=0", "export.redraw.strength=0", "refine.steps=2",
       "refine.dmtet.init_steps=30", "train.validate_every=0"]  # fmt: skip


def build_sd15_random(folder: Path) -> None:
    """SD-1.5's U-Net, VAE, text encoder and scheduler configs with random weights, saved as a diffusers folder."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from dreamlift.embedded.tokenizer import build_tokenizer
    from dreamlift.embedded.train import save_diffusers_folder

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
        layers_per_block=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, steps_offset=1
    )
    save_diffusers_folder(folder, vae, text_encoder, build_tokenizer(), unet, scheduler)


def run_one(model: str, preset: str, device: str, dtype: str, out: Path) -> None:
    """Two steps of ``preset``; prints one JSON line: seconds per step, wall seconds, peak RSS (MiB)."""
    from dreamlift import TextTo3DPipeline

    start = time.time()
    overrides = [*CUT, f"prior.dtype={dtype}"]
    result = TextTo3DPipeline(model, device)("a corgi", config=preset, overrides=overrides, steps=2, out_dir=out)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = result.metrics
    print(json.dumps({"preset": preset, "s_per_step": metrics["seconds_per_step"],
                      "wall_s": round(time.time() - start, 1), "peak_rss_mib": round(peak_mib)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the random SD-1.5-sized folder (built if absent)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", type=Path, default=Path("/tmp/sd-presets"))
    parser.add_argument("--presets", nargs="*", default=PRESETS)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one preset
    args = parser.parse_args()
    if args.one:
        run_one(str(args.model), args.one, args.device, args.dtype, args.out / args.one)
        return
    if not (args.model / "model_index.json").is_file():
        build_sd15_random(args.model)
    print(f"{'preset':<20} {'s/step':>8} {'wall s':>8} {'peak RSS MiB':>13}")
    for preset in args.presets:
        shutil.rmtree(args.out / preset, ignore_errors=True)  # the last measurement's run would be resumed
        command = [sys.executable, __file__, "--model", str(args.model), "--device", args.device, "--dtype",
                   args.dtype, "--out", str(args.out), "--one", preset]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            why = "killed (SIGKILL: out of memory?)" if done.returncode == -9 else done.stderr.strip().splitlines()[-1]
            print(f"{preset:<20} failed: {why}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{preset:<20} {row['s_per_step']:>8.2f} {row['wall_s']:>8.1f} {row['peak_rss_mib']:>13}")


if __name__ == "__main__":
    main()
