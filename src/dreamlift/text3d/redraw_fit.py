"""Redraw-and-fit: stage 1 held, from fixed cameras all around, to the prior's redrawings of its own renders.

Score distillation sees one random view at a time, and the prior draws a cube at any yaw in each; the views' pulls
average to the shape every yaw agrees on, a drum. An iterative dataset update (Instruct-NeRF2NeRF's; DreamGaussian's
texture stage, applied here to the geometry) breaks the symmetry: a few times during the stage, the scene is
rendered (albedo) from rings of fixed cameras, the prior redraws every render (noised part of the way and denoised
again, SDEdit, with the camera's view prompt), and until the next round each redrawing, with its mask from its
border colour, is a reference view (:class:`~dreamlift.text3d.reference.ReferenceView`) held beside the guidance,
one view per step in turn. Every redrawing starts from the same 3D-consistent object, so the prior draws one
object in one pose from every side: the cube's faces where the render already has them, its colours (red, where
score distillation leaves pink).

The rounds fall at fixed fractions of the stage; each redraws with its own seed (the run's plus the step), and the
redrawings are checkpointed, so a resumed run holds the views it had. Each round's renders and redrawings are kept
as ``validation/redraw_N.png`` (renders above, redrawings below).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from dreamlift.io import write_png
from dreamlift.priors.diffusion import DiffusionPrior
from dreamlift.priors.prompts import PromptEmbeddings
from dreamlift.render.output import RenderOutput
from dreamlift.scene.cameras import Cameras
from dreamlift.text3d.redraw import PriorRedraw, RedrawConfig
from dreamlift.text3d.reference import ReferenceConfig, ReferenceView, with_border_mask

if TYPE_CHECKING:
    from dreamlift.text3d.scenes import Scene


@dataclass
class RedrawFitConfig:
    """Stage 1's redraw-and-fit rounds (see the module's docstring)."""

    rounds: int = 0
    """Redraw rounds; 0 turns redraw-and-fit off."""
    start: float = 0.25
    """Fraction of stage 1's steps at which the first round redraws (the shape must be there to redraw)."""
    end: float = 0.875
    """Fraction of the steps at which the last round redraws; the rounds between are evenly spaced."""
    elevations: tuple[float, ...] = (15.0, 50.0, 80.0)
    """Elevations (degrees) of the rings of cameras; a ring above 60° is prompted as an overhead view, which shows
    a cube's square top."""
    azimuths: tuple[int, ...] = (6, 4, 1)
    """Cameras in each ring, evenly spaced in azimuth (every other ring turned half a step)."""
    distance: float = 1.8
    """Distance of the cameras from the origin (world units)."""
    fov: float = 47.5
    """Vertical field of view of the cameras (degrees)."""
    every: int = 1
    """Steps from one held view to the next: each costs a render and its backward, so 2 halves what holding costs."""
    resolution: int = 64
    """Side in pixels of the render of a held view (the redrawing is area-averaged to it)."""
    weight: float = 300.0
    """Weight of each held view's colour and mask terms (:class:`~dreamlift.text3d.reference.ReferenceConfig`)."""
    redraw: RedrawConfig = dataclasses.field(default_factory=lambda: RedrawConfig(strength=0.5))
    """How the prior redraws the renders (strength, sampler steps, guidance scale, background tolerance of the
    masks, render size)."""

    def __post_init__(self):
        if self.rounds < 0 or not 0 <= self.start <= self.end < 1:
            raise ValueError("redraw_fit.rounds must be >= 0 and 0 <= redraw_fit.start <= redraw_fit.end < 1")
        if len(self.elevations) != len(self.azimuths) or not self.azimuths or min(self.azimuths) < 1:
            raise ValueError("redraw_fit.elevations and redraw_fit.azimuths need one count >= 1 per ring")
        if not all(-90 < e < 90 for e in self.elevations):
            raise ValueError("redraw_fit.elevations must lie in (-90, 90) degrees")
        if self.distance <= 0 or not 0 < self.fov < 180 or self.weight < 0:
            raise ValueError("redraw_fit.distance must be > 0, redraw_fit.fov in (0, 180) and redraw_fit.weight >= 0")
        if self.resolution < 8 or self.every < 1:
            raise ValueError("redraw_fit.resolution must be >= 8 and redraw_fit.every >= 1")
        if self.rounds and self.redraw.strength == 0:
            raise ValueError("redraw_fit.redraw.strength must be > 0: at 0 the prior redraws nothing")

    def round_steps(self, steps: int) -> list[int]:
        """The steps (of a stage of ``steps``) at which the rounds redraw, ascending, without repeats; never step 0,
        before the scene has a shape to render."""
        if not self.rounds:
            return []
        fractions = torch.linspace(self.start, self.end, self.rounds).tolist()
        return sorted({max(1, round(f * steps)) for f in fractions})

    def views(self) -> list[ReferenceConfig]:
        """The fixed cameras, ring after ring, each as the reference view it holds (its camera and weights)."""
        views = []
        for ring, (elevation, count) in enumerate(zip(self.elevations, self.azimuths)):
            spacing = 360.0 / count
            for i in range(count):
                views.append(
                    ReferenceConfig(
                        azimuth=i * spacing + (spacing / 2) * (ring % 2),
                        elevation=elevation,
                        distance=self.distance,
                        fov=self.fov,
                        rgb_weight=self.weight,
                        mask_weight=self.weight,
                        background_tolerance=self.redraw.background_tolerance,
                    )
                )
        return views


class RedrawFit:
    """The redraw rounds of one stage-1 run and the views they hold, per particle.

    Before the first round nothing is held; after it, every ``every``-th step ``n`` holds view ``n / every mod V``
    of the V fixed cameras, so that the views take turns.
    """

    def __init__(self, config: RedrawFitConfig, prior: DiffusionPrior, prompts: PromptEmbeddings, seed: int):
        self.config, self.prior, self.prompts, self.seed = config, prior, prompts, seed
        self.view_configs = config.views()
        self.cameras = Cameras.cat([view.camera() for view in self.view_configs]).to(prior.device)
        self.pictures: torch.Tensor | None = None  # P×V×4×S×S: each particle's redrawings, their masks in alpha
        self.views: list[list[ReferenceView]] = []  # [particle][view], held on the prior's device

    def is_round(self, step: int, steps: int) -> bool:
        """Whether a round redraws before step ``step`` of a stage of ``steps``."""
        return step in self.config.round_steps(steps)

    @torch.no_grad()
    def redraw(self, scenes: Sequence[Scene], step: int, validation_dir: Path) -> None:
        """A round: render every scene (albedo) from the fixed cameras, have the prior redraw the renders with each
        camera's view prompt (seeded by the run's seed plus ``step``), hold the redrawings from now on, and write
        renders and redrawings to ``validation_dir/redraw_<step>.png``."""
        c = self.config.redraw
        redraw = PriorRedraw(self.prior, self.prompts, c, self.seed + step)
        cameras = self.cameras  # V of them
        pictures, strips = [], []
        for scene in scenes:
            scene.eval()
            # A view at a time: early in the stage, while the surface is soft, a ray takes many samples.
            renders = torch.cat([scene.render(cameras[v], c.size, c.size).rgb for v in range(len(cameras))])  # V×3×S×S
            drawn = redraw(renders, cameras)
            pictures.append(torch.stack([with_border_mask(image, c.background_tolerance) for image in drawn.cpu()]))
            strips.append(torch.cat([torch.cat(list(renders), dim=2), torch.cat(list(drawn), dim=2)], dim=1).cpu())
        write_png(torch.cat(strips, dim=1), validation_dir / f"redraw_{step:06d}.png")
        self.load_state_dict({"pictures": torch.stack(pictures)})

    def holds(self, step: int) -> bool:
        """Whether step ``step`` holds a view (a round has redrawn, and it is an ``every``-th step)."""
        return bool(self.views) and step % self.config.every == 0

    def view(self, step: int) -> int:
        """Which of the fixed cameras' views step ``step`` holds."""
        return step // self.config.every % len(self.view_configs)

    def camera(self, step: int) -> Cameras:
        """The camera (a batch of one, on the prior's device) of the view held at ``step``."""
        return self.cameras[self.view(step)]

    def loss(self, particle: int, out: RenderOutput, step: int) -> torch.Tensor:
        """The loss of particle ``particle``'s render ``out`` (albedo, from :meth:`camera` of a ``step`` that
        :meth:`holds`) against the redrawing it holds."""
        return self.views[particle][self.view(step)].loss(out)

    # --- checkpoints: the redrawings ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"pictures": self.pictures}

    def load_state_dict(self, state: dict) -> None:
        pictures = state["pictures"]
        if pictures is not None and (pictures.ndim != 5 or pictures.shape[1:3] != (len(self.view_configs), 4)):
            raise ValueError(
                f"redraw_fit holds {tuple(pictures.shape)} pictures, not {len(self.view_configs)} RGBA views each"
            )
        self.pictures = pictures
        self.views = [
            [ReferenceView(view, picture, self.prior.device) for view, picture in zip(self.view_configs, particle)]
            for particle in (pictures if pictures is not None else [])
        ]
