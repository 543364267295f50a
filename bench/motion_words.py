"""Do the temporal layers read the motion word? Denoising loss of each clip under each of the six motion words.

    python bench/motion_words.py [--motion-adapter embedded|PATH ...] [--clips 64] [--device cpu|cuda]

Held-out procedural clips (a seed no training run uses) are noised at a few timesteps and denoised by the
inflated U-Net once per motion word: the clip's own caption ("a red cube moving left") and the same caption
with each other motion ("a red cube moving right", "… moving up", "… growing", …). Same frames, same noise, so
any difference in the ε error comes from the word alone. Two readings per timestep:

- ratio: the error with the opposite word over the error with the clip's own (1.00: the word is ignored; above
  1, largest at high noise, where only the prompt can say which way things move);
- read: the fraction of clips whose own word gives the smallest error of the six, per motion (1/6 by chance):
  it shows which words the layers tell apart, not only opposites (e.g. "right" read as "up").

Much cheaper than sampling (bench/motion_quality.py), so it is the first check of a new motion adapter.
"""

from __future__ import annotations

import argparse

import torch

from dreamlift.embedded.motions import MOTIONS, render_motion_clips
from dreamlift.loading import load_motion_adapter, load_prior_model
from dreamlift.priors.diffusion import quiet_libraries
from dreamlift.training.clips import reversed_caption
from dreamlift.video.config import Text2VideoConfig
from dreamlift.video.inflation import InflatedUNet

HELD_OUT_SEED = 987_654
TIMESTEPS = (200, 500, 800, 950)


def motion_of(caption: str) -> str:
    return next(m for m in MOTIONS if caption.endswith(m))


@torch.no_grad()
def word_losses(prior, adapter, clips, timesteps, batch: int = 16) -> dict[int, torch.Tensor]:
    """For each timestep t: the ε-MSE of every clip under every motion word, N×6 (columns in MOTIONS order)."""
    frames = clips.frames.flatten(0, 1).to(prior.device, prior.dtype) / 127.5 - 1
    latents = torch.cat([prior.vae.encode(frames[i : i + 256]).latent_dist.mean for i in range(0, len(frames), 256)])
    latents = latents * prior.vae.config.scaling_factor
    latents = latents.reshape(len(clips.captions), -1, *latents.shape[1:]).permute(0, 2, 1, 3, 4)  # N×C×F×h×w
    generator = torch.Generator().manual_seed(0)
    losses = {}
    with InflatedUNet(prior.unet, adapter) as inflated:
        for t in timesteps:
            per_batch = []
            for start in range(0, len(clips.captions), batch):
                z0 = latents[start : start + batch]
                captions = clips.captions[start : start + batch]
                noise = torch.randn(z0.shape, generator=generator).to(z0)
                steps = torch.full((len(z0),), t, device=prior.device)
                noisy = prior.add_noise(z0, noise, steps).to(prior.dtype)
                columns = []
                for word in MOTIONS:
                    text = [c[: -len(motion_of(c))] + word for c in captions]
                    pred = inflated(noisy, steps, prior.encode_text(text), prior.embed_tokens(text)).float()
                    columns.append((pred - noise.float()).pow(2).mean(dim=(1, 2, 3, 4)).cpu())
                per_batch.append(torch.stack(columns, dim=1))
            losses[t] = torch.cat(per_batch)
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--motion-adapter", nargs="+", default=["embedded"])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    base = Text2VideoConfig()
    prior = load_prior_model(base.prior, torch.device(args.device))
    per_motion = "".join(f"{motion.replace('moving ', ''):>10}" for motion in MOTIONS)
    print(
        f"{'motion adapter':<32}{'t':>5}{'own':>10}{'opposite':>10}{'ratio':>7}"
        f"   read per motion:{per_motion}{'all':>7}"
    )
    for name in args.motion_adapter:
        base.motion_adapter = name
        with quiet_libraries():
            adapter = load_motion_adapter(base.motion_adapter, prior.unet).to(prior.device, prior.dtype).eval()
        trained = adapter.config.trained_frames
        clips = render_motion_clips(args.clips, trained, HELD_OUT_SEED, prior.image_size, str(prior.device))
        own_index = torch.tensor([MOTIONS.index(motion_of(c)) for c in clips.captions])
        opposite_index = torch.tensor([MOTIONS.index(motion_of(reversed_caption(c))) for c in clips.captions])
        rows = torch.arange(len(clips.captions))
        for t, losses in word_losses(prior, adapter, clips, TIMESTEPS).items():
            own, opposite = losses[rows, own_index], losses[rows, opposite_index]
            read = losses.argmin(dim=1) == own_index
            reads = "".join(
                f"{read[own_index == k].float().mean():>10.2f}" if (own_index == k).any() else f"{'-':>10}"
                for k in range(len(MOTIONS))
            )
            row = (
                f"{name[-32:]:<32}{t:>5}{own.mean():>10.5f}{opposite.mean():>10.5f}{opposite.mean() / own.mean():>7.3f}"
            )
            print(f"{row}{' ' * 19}{reads}{read.float().mean():>7.2f}")


if __name__ == "__main__":
    main()
