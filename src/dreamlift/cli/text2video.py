"""``text2video`` and its subcommand ``train`` (temporal layers for an image prior)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dreamlift.cli.common import OneLineParser, device_argument, training_parser, work_folder

DESCRIPTION = (
    "Make a short video from a text prompt with an image prior animated by a motion adapter (AnimateDiff) or "
    "zero-shot (Text2Video-Zero). Settings not given keep the defaults of Text2VideoConfig."
)


def text2video_parser(epilog: str = "") -> OneLineParser:
    parser = OneLineParser(
        prog="text2video", description=DESCRIPTION, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("prompt", help='what to show, e.g. "a blue sphere moving right"')
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. zero_shot.motion=[0.05,0]")
    parser.add_argument(
        "--config", default=None, help="preset (animatediff-sd: a SD-1.5 model's AnimateDiff) or YAML file of fields"
    )
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


def run_text2video(argv: list[str], epilog: str = "") -> int:
    args = text2video_parser(epilog).parse_intermixed_args(argv)
    from dreamlift.pipelines import TextToVideoPipeline

    pipeline = TextToVideoPipeline(args.model, args.motion_adapter, args.device)
    values = {
        "frames": args.frames, "fps": args.fps, "steps": args.steps, "guidance_scale": args.guidance,
        "seed": args.seed, "videos": args.videos, "mode": args.mode,
    }  # fmt: skip
    result = pipeline(args.prompt, config=args.config, overrides=args.overrides, out_dir=args.out, **values)
    stems = [path.stem for path in result.videos]
    listed = stems[0] if len(stems) == 1 else f"{stems[0]} … {stems[-1]}"
    seconds = result.metrics["total_seconds"]
    print(f"text2video: wrote {result.run_dir}/{listed}.{{mp4,gif}} in {seconds:.0f} s", file=sys.stderr)
    return 0


def run_train_motion(argv: list[str]) -> int:
    parser = training_parser(
        "text2video train", "Train temporal layers for an image prior (its weights frozen) on clips; resumable.",
        "folder for the trained temporal layers", "TrainMotionConfig", "steps=500",
    )  # fmt: skip
    parser.add_argument(
        "--clips", default="procedural", help="folder of videos with .txt captions (default: procedural clips)"
    )
    parser.add_argument("--model", default="embedded", help="image prior: hub id, diffusers folder, or 'embedded'")
    args = parser.parse_intermixed_args(argv)
    from dreamlift.pipelines import train_motion

    train_motion(args.out, work_folder(args), args.clips, args.model, args.config, args.overrides, args.device)
    print(f"text2video train: temporal layers → {args.out}", file=sys.stderr)
    return 0
