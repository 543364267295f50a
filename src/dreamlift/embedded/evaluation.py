"""How well the embedded prior draws what it is asked: 2D samples graded by the independent judge."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamlift.embedded.judge import ShapeJudge
from dreamlift.embedded.shapes import COLOURS, SHAPES, caption
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.sampling import sample_images

ALL_PROMPTS = [(colour, shape) for colour in COLOURS for shape in SHAPES]
"""The 30 colour × shape pairs the embedded prior knows."""


@dataclass
class PromptScore:
    """Judged samples of one prompt: fractions with the right colour, the right shape, and both."""

    prompt: str
    colour: float
    shape: float
    both: float


def score_prompts(
    prior: DiffusionPrior,
    judge: ShapeJudge,
    pairs: list[tuple[str, str]],
    samples: int,
    guidance_scale: float,
    steps: int = 30,
    seed: int = 0,
) -> tuple[list[PromptScore], torch.Tensor]:
    """Sample each (colour, shape) prompt ``samples`` times and judge the images.

    Every prompt's batch starts from a generator seeded ``seed``, so prompts and guidance scales are compared
    on the same initial noise.

    Returns the scores and all images (P·S×3×H×W, prompt-major), so callers can compare guidance scales.
    """
    scores, images = [], []
    for colour, shape in pairs:
        prompt = caption(colour, shape)
        generator = torch.Generator().manual_seed(seed)
        batch = sample_images(prior, [prompt] * samples, steps, guidance_scale, generator).cpu()
        colours, shapes = judge.predict(batch)
        right_colour = [c == colour for c in colours]
        right_shape = [s == shape for s in shapes]
        scores.append(
            PromptScore(
                prompt,
                sum(right_colour) / samples,
                sum(right_shape) / samples,
                sum(a and b for a, b in zip(right_colour, right_shape)) / samples,
            )
        )
        images.append(batch)
    return scores, torch.cat(images)
