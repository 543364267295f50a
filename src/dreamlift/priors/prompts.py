"""Prompt embeddings, computed once per run: the prompt, its view-dependent variants, and the negative prompt."""

from __future__ import annotations

import torch

from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.views import VIEWS, view_index, view_suffix


class PromptEmbeddings:
    """Text states for one prompt, looked up per camera.

    ``base``: 1×L×D for the plain prompt (empty in an image-to-3D run without one). ``views``: V×L×D for the
    prompt + each suffix of :data:`VIEWS` (:meth:`view_prompts`). ``negative``: 1×L×D for the negative prompt
    (the empty prompt by default), the unconditional branch of CFG.
    """

    def __init__(self, prior: DiffusionPrior, prompt: str, negative_prompt: str = "", view_dependent: bool = True):
        self.prompt, self.negative_prompt, self.view_dependent = prompt.strip(), negative_prompt, view_dependent
        texts = [self.prompt] + self.view_prompts() + [negative_prompt]
        states = prior.encode_text(texts)
        self.base, self.views, self.negative = states[:1], states[1:-1], states[-1:]

    def view_prompts(self) -> list[str]:
        """The text behind each row of ``views``: the prompt and a view suffix, or for an empty prompt (an
        image-to-3D run without one) the view alone, e.g. ``"front view"``."""
        if not self.prompt:
            return [view_suffix(v).removeprefix(", ") for v in VIEWS]
        return [self.prompt + view_suffix(v) for v in VIEWS]

    def for_cameras(self, azimuth: torch.Tensor, elevation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional and unconditional states (each B×L×D) for cameras with these angles (radians, B)."""
        batch = azimuth.shape[0]
        if self.view_dependent:
            cond = self.views[view_index(azimuth, elevation).to(self.views.device)]
        else:
            cond = self.base.expand(batch, -1, -1)
        return cond, self.negative.expand(batch, -1, -1)
