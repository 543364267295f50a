"""2D quality of the embedded prior: for each colour × shape prompt, do samples show that colour and shape?

    python bench/prior_quality.py [--samples 8] [--guidance 7.5] [--steps 30] [--model embedded] [--device cpu]

Samples every prompt at the default guidance and, with the same seeds, at guidance 1 (no CFG); the independent
judge (dreamlift.embedded.judge, trained on the procedural dataset) grades colour and shape. Prints a table per
prompt, the totals, and how much guidance changes the samples (mean absolute pixel difference).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dreamlift.embedded import EMBEDDED_PRIOR_DIR
from dreamlift.embedded.evaluation import ALL_PROMPTS, score_prompts
from dreamlift.embedded.judge import ShapeJudge
from dreamlift.loading import load_prior_model
from dreamlift.text3d.config import Text3DConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    config = Text3DConfig()
    config.prior.model = args.model
    prior = load_prior_model(config.prior, torch.device(args.device))
    judge = ShapeJudge.load(prior_folder(args.model) / "judge.safetensors")
    guided, guided_images = score_prompts(prior, judge, ALL_PROMPTS, args.samples, args.guidance, args.steps)
    plain, plain_images = score_prompts(prior, judge, ALL_PROMPTS, args.samples, 1.0, args.steps)
    print(f"{'prompt':<24}{'colour':>8}{'shape':>8}{'both':>8}   {'both @1':>8}")
    for g, p in zip(guided, plain):
        print(f"{g.prompt:<24}{g.colour:>8.0%}{g.shape:>8.0%}{g.both:>8.0%}   {p.both:>8.0%}")

    def mean(scores, field):
        return sum(getattr(s, field) for s in scores) / len(scores)

    print(
        f"{'all (' + str(len(guided) * args.samples) + ' samples)':<24}{mean(guided, 'colour'):>8.1%}"
        f"{mean(guided, 'shape'):>8.1%}{mean(guided, 'both'):>8.1%}   {mean(plain, 'both'):>8.1%}"
    )
    print(f"prompts with both right in >= 90% of samples: {sum(s.both >= 0.9 for s in guided)}/{len(guided)}")
    difference = (guided_images - plain_images).abs().mean().item()
    print(f"guidance {args.guidance} vs 1, same seeds: mean |pixel difference| {difference:.3f} (of 1)")


def prior_folder(model: str) -> Path:
    """The folder holding the judge: the shipped prior's, or the given model folder."""
    return EMBEDDED_PRIOR_DIR if model == "embedded" else Path(model)


if __name__ == "__main__":
    main()
