"""text → 2D images from the prior alone: :class:`TextToImagePipeline` (``text3d sample-prior``), to see what a
prior draws for a prompt before distilling it into 3D."""

from __future__ import annotations

import torch

from dreamlift.embedded.vocabulary import warn_of_unknown_words
from dreamlift.errors import UsageError
from dreamlift.loading import ModelCache
from dreamlift.priors.diffusion import PriorConfig
from dreamlift.priors.sampling import sample_images
from dreamlift.runtime import check_seed, resolve_device


class TextToImagePipeline:
    """Samples images of a prompt from a prior (``embedded``, a hub id or a diffusers folder) on ``device``."""

    def __init__(self, model: str = "embedded", device: str = "auto", models: ModelCache | None = None):
        self.model, self.device, self.models = model, device, models or ModelCache()

    @classmethod
    def from_pretrained(cls, model: str = "embedded", device: str = "auto") -> TextToImagePipeline:
        """A pipeline with ``model`` loaded now."""
        pipeline = cls(model, device)
        pipeline.models.prior(PriorConfig(model=model), resolve_device(device))
        return pipeline

    def __call__(
        self,
        prompt: str,
        *,
        num_images: int = 8,
        steps: int = 30,
        guidance_scale: float = 7.5,
        seed: int = 0,
        show_progress: bool = False,
    ) -> torch.Tensor:
        """``num_images`` samples of ``prompt``, N×3×H×W in [0, 1] on the CPU, from the noise of ``seed``; an empty
        prompt or a count below 1 is a UsageError."""
        if not prompt or not prompt.strip():
            raise UsageError("the prompt is empty")
        if num_images < 1 or steps < 1:
            raise UsageError("the number of images and of steps must be >= 1")
        check_seed(seed, "seed")
        warn_of_unknown_words(self.model, prompt)
        prior = self.models.prior(PriorConfig(model=self.model), resolve_device(self.device))
        generator = torch.Generator().manual_seed(seed)
        prompts = [prompt.strip()] * num_images
        return sample_images(prior, prompts, steps, guidance_scale, generator, show_progress=show_progress).cpu()
