"""A small image classifier that names the colour and shape of an embedded-prior scene.

It is trained on the procedural dataset (with blur, noise and colour jitter so that it also reads diffusion
samples and renders of exported meshes), and it is independent of the diffusion prior: it judges the prior's
2D samples and text3d's 3D results without being the network that produced them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from dreamlift.embedded.shapes import COLOURS, SHAPES


class ShapeJudge(nn.Module):
    """Images N×3×H×W in [0, 1] (any H, W; trained at 64×64) → colour logits N×6 and shape logits N×5."""

    def __init__(self, width: int = 32):
        super().__init__()
        layers, channels = [], 3
        for out in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GroupNorm(8, out), nn.SiLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.colour_head = nn.Linear(channels, len(COLOURS))
        self.shape_head = nn.Linear(channels, len(SHAPES))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.interpolate(images, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        x = self.features(x * 2 - 1).mean(dim=(2, 3))
        return self.colour_head(x), self.shape_head(x)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[list[str], list[str]]:
        """Colour and shape names for each image."""
        colour_logits, shape_logits = self(images)
        colours = [list(COLOURS)[i] for i in colour_logits.argmax(-1).tolist()]
        shapes = [SHAPES[i] for i in shape_logits.argmax(-1).tolist()]
        return colours, shapes

    def save(self, path: Path) -> None:
        save_file(self.state_dict(), str(path))

    @classmethod
    def load(cls, path: Path) -> ShapeJudge:
        judge = cls()
        judge.load_state_dict(load_file(str(path)))
        return judge.eval()


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random blur, noise and brightness/contrast changes (images N×3×H×W in [0, 1])."""
    n = images.shape[0]
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    blur = torch.rand(n, 1, 1, 1, generator=generator)
    images = images + blur * (blurred - images)
    gain = 0.85 + 0.3 * torch.rand(n, 1, 1, 1, generator=generator)
    offset = 0.08 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    noise = 0.03 * torch.rand(n, 1, 1, 1, generator=generator) * torch.randn(images.shape, generator=generator)
    return (images * gain + offset + noise).clamp(0, 1)
