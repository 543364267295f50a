"""text → a short video: :class:`TextToVideoPipeline`, what the CLI, the batch runner and scripts call.

    from dreamlift import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained("embedded", motion_adapter="embedded")
    result = pipe("a blue sphere moving right", frames=8, seed=0, out_dir="outputs/video/sphere")
    result.frames  # videos × frames × H × W × 3, uint8

The run folder's layout is :mod:`dreamlift.video.sampler`'s; nothing is written before sampling ends.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dreamlift.config import VIDEO_PRESET_DIR, load_config
from dreamlift.embedded.vocabulary import warn_of_unknown_words
from dreamlift.errors import UsageError
from dreamlift.io import copy_files, fresh_run_dir
from dreamlift.loading import ModelCache
from dreamlift.locks import claimed_folder
from dreamlift.priors.diffusion import PriorConfig
from dreamlift.progress import ProgressCallback
from dreamlift.runtime import resolve_device
from dreamlift.video.config import Text2VideoConfig
from dreamlift.video.sampler import VideoSampler, video_names


@dataclass
class TextToVideoOutput:
    """What a text2video run made, in ``run_dir``."""

    run_dir: Path
    metrics: dict
    """Seeds, frame count and size, timings (metrics.json)."""
    frames: np.ndarray
    """The videos, V×F×H×W×3 uint8."""

    @property
    def videos(self) -> list[Path]:
        """The MP4 of each video (a GIF of each lies beside it)."""
        return [self.run_dir / f"{stem}.mp4" for stem in video_names(len(self.frames))]

    @property
    def files(self) -> dict[str, Path]:
        """The videos (video.mp4 and video.gif, or video-i.*), config.yaml and metrics.json, by name."""
        names = [f"{stem}.{kind}" for stem in video_names(len(self.frames)) for kind in ("mp4", "gif")]
        names += ["config.yaml", "metrics.json"]
        return {name: self.run_dir / name for name in names if (self.run_dir / name).is_file()}

    def save(self, out_dir: Path | str) -> Path:
        """Copy :attr:`files` into ``out_dir``, each written atomically; returns it."""
        return copy_files(self.files, out_dir)


class TextToVideoPipeline:
    """Samples short clips from an image prior, animated by temporal layers (``animate``) or zero-shot.

    ``model`` and ``motion_adapter``: the prior and the temporal layers every run uses (``embedded``, hub ids,
    folders; an AnimateDiff file for the layers); None uses each run's config. ``device``: ``auto``, ``cpu`` or
    ``cuda``; None uses the config's. ``models``: where loaded models are kept between runs.
    """

    def __init__(
        self,
        model: str | None = None,
        motion_adapter: str | None = None,
        device: str | None = None,
        models: ModelCache | None = None,
    ):
        self.model, self.motion_adapter, self.device = model, motion_adapter, device
        self.models = models or ModelCache()

    @classmethod
    def from_pretrained(
        cls, model: str = "embedded", motion_adapter: str = "embedded", device: str = "auto"
    ) -> TextToVideoPipeline:
        """A pipeline with its prior and temporal layers loaded now on ``device``."""
        pipeline = cls(model, motion_adapter, device)
        prior = pipeline.models.prior(PriorConfig(model=model), resolve_device(device))
        pipeline.models.motion_adapter(motion_adapter, prior)
        return pipeline

    def config(
        self, prompt: str, *, config: str | Path | None = None, overrides: Sequence[str] = (), **values
    ) -> Text2VideoConfig:
        """The run config of ``prompt``: the preset ``config`` (a name in :data:`VIDEO_PRESET_DIR`, e.g.
        ``animatediff-sd``, or a YAML file; none: the defaults), dotted ``overrides``, then ``values`` by field
        name (``frames``, ``fps``, ``steps``, ``guidance_scale``, ``seed``, ``videos``, ``mode``…; None leaves a
        field as it is). An empty prompt is a UsageError."""
        if not prompt or not prompt.strip():
            raise UsageError('the prompt is empty; say what to show, e.g. text2video "a blue sphere moving right"')
        given = {"prior.model": self.model, "motion_adapter": self.motion_adapter, "device": self.device, **values}
        given = {key: value for key, value in given.items() if value is not None}
        settings = {**given, "prompt": prompt.strip()}
        preset = config and str(config)
        return load_config(Text2VideoConfig, preset, list(overrides), settings, preset_dir=VIDEO_PRESET_DIR)

    def __call__(
        self,
        prompt: str,
        *,
        config: str | Path | None = None,
        overrides: Sequence[str] = (),
        out_dir: str | Path | None = None,
        callback: ProgressCallback | None = None,
        **values,
    ) -> TextToVideoOutput:
        """Sample the clips of ``prompt`` (see :meth:`config` for the settings) into ``out_dir`` (default:
        outputs/video/<prompt>, numbered if taken), which must not hold a run; ``callback`` hears of every step."""
        run_config = self.config(prompt, config=config, overrides=overrides, **values)
        run_dir = Path(out_dir) if out_dir is not None else fresh_run_dir(run_config.prompt, Path("outputs") / "video")
        return self.run(run_config, run_dir, callback)

    def run(
        self, config: Text2VideoConfig, run_dir: Path, callback: ProgressCallback | None = None
    ) -> TextToVideoOutput:
        """Sample ``config``'s clips into ``run_dir``, holding the folder while it runs (the models are loaded and
        checked first: a refusal leaves no folder)."""
        device = resolve_device(config.device)
        sampler = self.sampler(config, run_dir, device)
        with claimed_folder(run_dir):  # one writer
            if (run_dir / "config.yaml").exists():
                raise UsageError(f"{run_dir} already holds a run; choose another folder")
            where = f"on {device}, seed {config.seed} → {run_dir}"
            print(f'text2video: "{config.prompt}" ({config.mode}) {where}', file=sys.stderr)
            return self.sample_into(sampler, callback)

    def run_in_held_folder(
        self,
        config: Text2VideoConfig,
        run_dir: Path,
        device: torch.device,
        callback: ProgressCallback | None = None,
    ) -> TextToVideoOutput:
        """:meth:`run` on ``device`` in a folder the caller holds already (a batch worker holds its job's)."""
        return self.sample_into(self.sampler(config, run_dir, device), callback)

    def sampler(self, config: Text2VideoConfig, run_dir: Path, device: torch.device) -> VideoSampler:
        """The sampler of ``config`` into ``run_dir`` on ``device``, its models loaded (once per pipeline) and
        checked against each other."""
        warn_of_unknown_words(config.prior.model, config.prompt)
        prior = self.models.prior(config.prior, device)
        adapter = self.models.motion_adapter(config.motion_adapter, prior) if config.mode == "animate" else None
        return VideoSampler(config, prior, adapter, run_dir)

    @staticmethod
    def sample_into(sampler: VideoSampler, callback: ProgressCallback | None = None) -> TextToVideoOutput:
        """Run ``sampler``; its folder is the caller's to hold."""
        metrics = sampler.run(callback)
        return TextToVideoOutput(sampler.run_dir, metrics, sampler.frames)
