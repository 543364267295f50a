"""``text3d`` and its subcommands: make, export, refine, sample-prior, train-prior.

Each command parses its arguments and calls a pipeline (:mod:`dreamlift.pipelines`), which builds the config,
loads the models and runs; the pipelines are imported inside the commands so that ``--help`` and argument errors
answer at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dreamlift.cli.common import OneLineParser, device_argument, given, split_prompt, training_parser, work_folder
from dreamlift.errors import UsageError
from dreamlift.pipelines import DEFAULT_PRESET

DESCRIPTION = (
    "Make a 3D asset from a text prompt by score distillation: a NeRF (or 3D Gaussians) optimised against a 2D "
    "diffusion prior, exported as GLB/OBJ/PLY with a turntable. Settings not given come from the preset."
)


def text3d_parser(epilog: str = "") -> OneLineParser:
    parser = OneLineParser(
        prog="text3d", description=DESCRIPTION, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("prompt", nargs="?", help='what to make, e.g. "a red cube" (optional with --image)')
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. guidance.scale=50")
    parser.add_argument("--config", default=None, help=f"preset name or YAML path (default: {DEFAULT_PRESET})")
    parser.add_argument("--model", default=None, help="hub id or diffusers folder of the prior (default: embedded)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the preset's)")
    parser.add_argument("--seed", type=int, default=None, help="random seed, recorded in config.yaml (default: 0)")
    parser.add_argument(
        "--image",
        type=Path,
        default=None,
        help="image-to-3D: make the object in this picture, seen from the reference.* camera (default: the front, "
        "15° up, 1.8 away, 47.5° field of view); the prompt, when given, guides the other views",
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: outputs/<prompt or image name>)")
    device_argument(parser, None)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    return parser


def run_text3d(argv: list[str], epilog: str = "") -> int:
    args = text3d_parser(epilog).parse_intermixed_args(argv)
    from dreamlift.io import latest_run_dir
    from dreamlift.pipelines import TextTo3DPipeline

    prompt, overrides = split_prompt(args.prompt, args.overrides)
    pipeline = TextTo3DPipeline(args.model, args.device)
    if args.resume:
        if args.image is not None:
            raise UsageError("--image does not apply to --resume, which reads the run's own copy of its picture")
        if args.config is not None:
            raise UsageError(
                "--config does not apply to --resume, which reads the run's config.yaml; "
                "change it with key=value overrides"
            )
        if prompt is None and args.out is None:
            raise UsageError("--resume needs the run folder (--out) or the prompt of the run")
        run_dir = args.out if args.out is not None else latest_run_dir(prompt)
        values = [f"{key}={value}" for key, value in given({"train.steps": args.steps, "seed": args.seed}).items()]
        result = pipeline.resume(run_dir, [*overrides, *values], prompt=prompt)
    else:
        settings = {"config": args.config, "overrides": overrides, "image": args.image, "steps": args.steps}
        result = pipeline(prompt, **settings, seed=args.seed, out_dir=args.out)
    print(f"text3d: wrote {export_summary(result)}", file=sys.stderr)
    return 0


def run_config(argv: list[str]) -> int:
    parser = OneLineParser(
        prog="text3d config",
        description="Print the config a run would resolve (the preset, then the overrides), as its config.yaml.",
    )
    parser.add_argument("prompt", nargs="?", help="the prompt (optional)")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. guidance.scale=50")
    parser.add_argument("--config", default=None, help=f"preset name or YAML path (default: {DEFAULT_PRESET})")
    args = parser.parse_intermixed_args(argv)
    from dreamlift.config import dump_yaml
    from dreamlift.pipelines.text3d import text3d_config

    prompt, overrides = split_prompt(args.prompt, args.overrides)
    print(dump_yaml(text3d_config(prompt, args.config, overrides)), end="")
    return 0


def export_details(stats: dict) -> str:
    """An export's statistics in a few words: faces, pieces (when several), genus (of a closed largest piece),
    threshold (NeRF exports), watertight, textured."""
    details = [f"{stats['faces']} faces"]
    if stats.get("pieces", 1) > 1:
        details.append(f"{stats['pieces']} pieces")
    if stats.get("genus") is not None:
        details.append(f"genus {stats['genus']}")
    if "threshold" in stats:
        details.append(f"threshold {stats['threshold']:.3g}")
    details += [word for word in ("watertight", "textured") if stats.get(word)]
    return ", ".join(details)


def export_summary(result) -> str:
    """What a run's last stage wrote (a :class:`~dreamlift.pipelines.text3d.TextTo3DOutput`), in a few words."""
    export, config = result.metrics["export"], result.config
    turntable = " and turntable.mp4" if config.export.turntable_frames > 0 else ""
    seconds = result.metrics["train_seconds"] + export["seconds"]
    formats = ",".join(config.export.formats)
    return f"{result.run_dir}/mesh.{{{formats}}} ({export_details(export)}){turntable} in {seconds:.0f} s"


def run_export(argv: list[str]) -> int:
    parser = OneLineParser(prog="text3d export", description="Export the mesh and turntable of a run again.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument(
        "overrides", nargs="*", help="dotted overrides of the export section, e.g. export.resolution=256"
    )
    device_argument(parser, "auto")
    args = parser.parse_intermixed_args(argv)
    from dreamlift.pipelines import TextTo3DPipeline

    result = TextTo3DPipeline(device=args.device).export(args.run_dir, args.overrides)
    print(f"text3d export: {export_details(result.metrics['export'])} → {args.run_dir}", file=sys.stderr)
    return 0


def run_refine(argv: list[str]) -> int:
    parser = OneLineParser(
        prog="text3d refine",
        description="Run the refine stage (Magic3D: DMTet from the NeRF, textured export) on a finished NeRF run.",
    )
    parser.add_argument("run_dir", type=Path, help="a text3d run folder (stage 1)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. refine.resolution=256")
    parser.add_argument("--steps", type=int, default=None, help="refine-stage steps (refine.steps)")
    parser.add_argument("--out", type=Path, default=None, help="folder of the refine stage (default: RUN_DIR/refine)")
    device_argument(parser, None)
    parser.add_argument("--resume", action="store_true", help="continue the refine stage in --out from its checkpoint")
    args = parser.parse_intermixed_args(argv)
    from dreamlift.pipelines import TextTo3DPipeline

    pipeline = TextTo3DPipeline(device=args.device)
    result = pipeline.refine(args.run_dir, args.overrides, steps=args.steps, out_dir=args.out, resume=args.resume)
    print(f"text3d refine: wrote {export_summary(result)}", file=sys.stderr)
    return 0


def run_sample_prior(argv: list[str]) -> int:
    parser = OneLineParser(prog="text3d sample-prior", description="Write a grid of 2D samples of the prior.")
    parser.add_argument("prompt")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--num", type=int, default=8, help="samples (a grid of up to 8 per row)")
    parser.add_argument("--steps", type=int, default=30, help="sampler steps")
    parser.add_argument("--guidance", type=float, default=7.5, help="CFG scale")
    parser.add_argument("--seed", type=int, default=0)
    device_argument(parser, "auto")
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: outputs/<prompt>-samples.png)")
    args = parser.parse_args(argv)
    from dreamlift.io import image_grid, slugify, write_png
    from dreamlift.pipelines import TextToImagePipeline

    pipeline = TextToImagePipeline(args.model, args.device)
    images = pipeline(
        args.prompt, num_images=args.num, steps=args.steps, guidance_scale=args.guidance, seed=args.seed,
        show_progress=True,
    )  # fmt: skip
    out = args.out or Path("outputs") / f"{slugify(args.prompt)}-samples.png"
    write_png(image_grid(images, columns=8), out)
    print(f"text3d sample-prior: {args.num} samples → {out}", file=sys.stderr)
    return 0


def run_train_prior(argv: list[str]) -> int:
    parser = training_parser(
        "text3d train-prior", "Train the embedded prior (resumable).", "folder for the diffusers-format model",
        "TrainPriorConfig", "unet_steps=100",
    )  # fmt: skip
    args = parser.parse_intermixed_args(argv)
    from dreamlift.pipelines import train_prior

    train_prior(args.out, work_folder(args), args.config, args.overrides, args.device)
    print(f"text3d train-prior: prior → {args.out}", file=sys.stderr)
    return 0
