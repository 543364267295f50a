"""``text2video`` and its subcommand ``train`` (temporal layers for an image prior)."""

from __future__ import annotations

import sys
from pathlib import Path

from dreamlift.cli.common import OneLineParser, device_argument, fresh_run_dir, given, training_parser, work_folder
from dreamlift.errors import UsageError

DESCRIPTION = (
    "Make a short video from a text prompt with an image prior and temporal layers. Subcommands: "
    "'text2video train [--clips DIR] --out DIR' trains temporal layers; 'text2video batch MANIFEST --out DIR' "
    "runs a manifest of prompts."
)


def text2video_parser() -> OneLineParser:
    parser = OneLineParser(prog="text2video", description=DESCRIPTION)
    parser.add_argument("prompt", help='what to show, e.g. "a blue sphere moving right"')
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. zero_shot.motion=[0.05,0]")
    parser.add_argument("--config", default=None, help="YAML file of Text2VideoConfig fields")
    parser.add_argument("--frames", type=int, default=None, help="frames per video (default 8)")
    parser.add_argument("--fps", type=int, default=None, help="frames per second (default 8)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 25)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first video; video i uses seed + i")
    parser.add_argument("--videos", type=int, default=None, help="videos of the prompt, sampled in one batch")
    parser.add_argument("--mode", choices=("animate", "zero-shot"), default=None)
    parser.add_argument("--model", default=None, help="image prior: hub id, diffusers folder, or 'embedded'")
    parser.add_argument(
        "--motion-adapter", default=None, help="temporal layers: folder, hub id, AnimateDiff file, or 'embedded'"
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: outputs/video/<prompt>)")
    device_argument(parser, None)
    return parser


def run_text2video(argv: list[str]) -> int:
    from dreamlift.config import load_config
    from dreamlift.loading import load_motion_adapter, load_prior_model
    from dreamlift.locks import claimed_folder
    from dreamlift.runtime import resolve_device
    from dreamlift.video.config import Text2VideoConfig
    from dreamlift.video.pipeline import TextToVideo, video_names

    args = text2video_parser().parse_intermixed_args(argv)
    if not args.prompt.strip():
        raise UsageError('the prompt is empty; say what to show, e.g. text2video "a blue sphere moving right"')
    flags = {
        "frames": args.frames, "fps": args.fps, "steps": args.steps, "guidance": args.guidance, "seed": args.seed,
        "videos": args.videos, "mode": args.mode, "prior.model": args.model, "motion_adapter": args.motion_adapter,
        "device": args.device,
    }  # fmt: skip
    values = {**given(flags), "prompt": args.prompt.strip()}
    config = load_config(Text2VideoConfig, args.config, args.overrides, values)
    run_dir = args.out if args.out is not None else fresh_run_dir(config.prompt, Path("outputs") / "video")
    device = resolve_device(config.device)
    prior = load_prior_model(config.prior, device)
    adapter = load_motion_adapter(config.motion_adapter, prior.unet) if config.mode == "animate" else None
    pipeline = TextToVideo(config, prior, adapter, run_dir)
    with claimed_folder(run_dir):  # one writer; a run that fails before writing leaves no folder
        if (run_dir / "config.yaml").exists():
            raise UsageError(f"{run_dir} already holds a run; choose another --out")
        where = f"on {device}, seed {config.seed} → {run_dir}"
        print(f'text2video: "{config.prompt}" ({config.mode}) {where}', file=sys.stderr)
        metrics = pipeline.run()
    names = video_names(config.videos)
    listed = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
    print(f"text2video: wrote {run_dir}/{listed}.{{mp4,gif}} in {metrics['total_seconds']:.0f} s", file=sys.stderr)
    return 0


def run_train_motion(argv: list[str]) -> int:
    from dreamlift.config import load_config
    from dreamlift.loading import load_prior_model
    from dreamlift.locks import claimed_folder
    from dreamlift.priors.diffusion import PriorConfig
    from dreamlift.runtime import resolve_device
    from dreamlift.video.train import MotionTrainer, TrainMotionConfig

    parser = training_parser(
        "text2video train", "Train temporal layers for an image prior (its weights frozen) on clips; resumable.",
        "folder for the trained temporal layers", "TrainMotionConfig", "steps=500",
    )  # fmt: skip
    parser.add_argument(
        "--clips", default="procedural", help="folder of videos with .txt captions (default: procedural clips)"
    )
    parser.add_argument("--model", default="embedded", help="image prior: hub id, diffusers folder, or 'embedded'")
    args = parser.parse_intermixed_args(argv)
    config = load_config(TrainMotionConfig, args.config, args.overrides, {"data": args.clips})
    if config.data != "procedural" and not Path(config.data).is_dir():
        raise UsageError(f"clip folder not found: {config.data}")
    device = resolve_device(args.device)
    # Temporal layers train in float32 (the prior too, so hidden states and layers agree on a GPU).
    prior = load_prior_model(PriorConfig(model=args.model, dtype="float32"), device)
    with claimed_folder(work_folder(args)) as work:  # one trainer at a time in a work folder
        MotionTrainer(config, prior, work, args.out, str(device)).run()
    print(f"text2video train: temporal layers → {args.out}", file=sys.stderr)
    return 0
