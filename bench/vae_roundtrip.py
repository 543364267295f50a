"""How much of colour and shape survives the embedded prior's VAE: fresh dataset images encoded and decoded.

    python bench/vae_roundtrip.py [--model embedded] [--images 600] [--device cpu]

The U-Net can only draw what the VAE's decoder can show, so this is the ceiling of the prior's 2D quality.
Renders images the VAE never saw (another seed than the training set), passes them through the VAE (posterior
mean, no sampling), and prints per colour: the judge's accuracy on the originals and on the round trips, the
mean absolute pixel error, and how far the object's mean latent lies from the background's (in units of the
latents' scaled std: the U-Net's noise has std 1, so a small distance is a colour that noise easily washes out).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from dreamlift.embedded.judge import ShapeJudge
from dreamlift.embedded.motion_judge import object_masks
from dreamlift.embedded.shapes import COLOURS, SHAPES, sample_shapes
from prior_quality import prior_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help="'embedded' or a folder holding vae/ and judge.safetensors")
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    folder = prior_folder(args.model)
    vae = AutoencoderKL.from_pretrained(folder / "vae").to(args.device).eval()
    judge = ShapeJudge.load(folder / "judge.safetensors")
    scenes = sample_shapes(args.images, seed=10**9, device=args.device)
    with torch.no_grad():
        latents = (
            torch.cat(
                [vae.encode(chunk.to(args.device) * 2 - 1).latent_dist.mean for chunk in scenes.images.split(100)]
            )
            * vae.config.scaling_factor
        )
        recon = torch.cat(
            [(vae.decode(z / vae.config.scaling_factor).sample.cpu() + 1) / 2 for z in latents.split(100)]
        )
    recon = recon.clamp(0, 1)
    latents = latents.cpu()
    # Object pixels as the motion judge finds them (far from the border's colour); latent cells at 1/4 size.
    cell_mask = F.adaptive_avg_pool2d(object_masks(scenes.images)[:, None].float(), latents.shape[-2:])[:, 0]

    original_colours, _ = judge.predict(scenes.images)
    trip_colours, trip_shapes = judge.predict(recon)
    names = list(COLOURS)
    true_colours = [names[i] for i in scenes.colour.tolist()]
    true_shapes = [SHAPES[i] for i in scenes.shape.tolist()]

    def fraction_right(predicted: list[str], truth: list[str], ids: list[int]) -> float:
        return sum(predicted[i] == truth[i] for i in ids) / len(ids)

    print(
        f"{'colour':<8}{'n':>5}{'judge orig':>12}{'judge trip':>12}{'shape trip':>12}"
        f"{'|pixel err|':>13}{'obj-bg latent':>15}"
    )
    for index, colour in enumerate(names + ["all"]):
        chosen = scenes.colour == index if colour != "all" else torch.ones_like(scenes.colour, dtype=torch.bool)
        ids = chosen.nonzero()[:, 0].tolist()
        error = (recon[chosen] - scenes.images[chosen]).abs().mean().item()
        distance = latent_distance(latents[chosen], cell_mask[chosen])
        print(
            f"{colour:<8}{len(ids):>5}{fraction_right(original_colours, true_colours, ids):>12.1%}"
            f"{fraction_right(trip_colours, true_colours, ids):>12.1%}"
            f"{fraction_right(trip_shapes, true_shapes, ids):>12.1%}"
            f"{error:>13.4f}{distance:>15.2f}"
        )


def latent_distance(latents: torch.Tensor, cell_mask: torch.Tensor) -> float:
    """Distance between the mean latent of object cells (mask > 0.9) and of background cells (mask < 0.1)."""
    cells = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    mask = cell_mask.reshape(-1)
    return (cells[mask > 0.9].mean(0) - cells[mask < 0.1].mean(0)).norm().item()


if __name__ == "__main__":
    main()
