"""``text3d`` and its subcommands: make, export, refine, sample-prior, train-prior.

Each command parses its arguments, builds its config, loads the models and hands them to the library; heavy
modules are imported inside the commands so that ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dreamlift.cli.common import (
    OneLineParser,
    device_argument,
    fresh_run_dir,
    given,
    latest_run_dir,
    slugify,
    split_prompt,
    training_parser,
    work_folder,
)
from dreamlift.errors import UsageError
from dreamlift.text3d import DEFAULT_PRESET

DESCRIPTION = (
    "Make a 3D asset from a text prompt by score distillation. Subcommands: 'text3d export RUN_DIR', "
    "'text3d refine RUN_DIR', 'text3d batch MANIFEST --out DIR', 'text3d sample-prior PROMPT', "
    "'text3d train-prior --out DIR'."
)


def text3d_parser() -> OneLineParser:
    parser = OneLineParser(prog="text3d", description=DESCRIPTION)
    parser.add_argument("prompt", nargs="?", help='what to make, e.g. "a red cube" (optional with --image)')
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. guidance.scale=50")
    parser.add_argument("--config", default=None, help=f"preset name or YAML path (default: {DEFAULT_PRESET})")
    parser.add_argument("--model", default=None, help="hub id or diffusers folder of the prior (default: embedded)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps")
    parser.add_argument("--seed", type=int, default=None, help="random seed (recorded in config.yaml)")
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


def run_text3d(argv: list[str]) -> int:
    from dreamlift.config import load_config
    from dreamlift.loading import load_prior_model
    from dreamlift.locks import claimed_folder
    from dreamlift.runtime import resolve_device
    from dreamlift.text3d.config import Text3DConfig, read_run_config
    from dreamlift.text3d.reference import read_picture
    from dreamlift.text3d.runs import check_device, has_progress, refine_dir, run_stages

    args = text3d_parser().parse_intermixed_args(argv)
    prompt, overrides = split_prompt(args.prompt, args.overrides)
    values = given({"train.steps": args.steps, "seed": args.seed, "prior.model": args.model, "device": args.device})
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
        config = read_run_config(run_dir, overrides, values)
        if prompt is not None and prompt.strip() != config.prompt:
            raise UsageError(f'{run_dir} is a run of "{config.prompt}", not "{prompt}"')
    else:
        if args.image is None and (prompt is None or not prompt.strip()):
            raise UsageError('the prompt is empty; say what to make, e.g. text3d "a red cube"')
        values["prompt"] = (prompt or "").strip()
        if args.image is not None:
            values["reference.image"] = str(args.image.absolute())
        config = load_config(Text3DConfig, args.config or DEFAULT_PRESET, overrides, values)
        if config.reference.image:
            read_picture(config.reference.image, config.reference.background_tolerance)  # refused before any write
        name = config.prompt or Path(config.reference.image).stem
        run_dir = args.out if args.out is not None else fresh_run_dir(name)
    device = resolve_device(config.device)
    check_device(config, device)
    prior = load_prior_model(config.prior, device)
    with claimed_folder(run_dir):  # a second text3d writing the same folder is refused while this one lives
        if not args.resume and has_progress(run_dir):
            raise UsageError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
        if not args.resume and (run_dir / "config.yaml").is_file():
            print(f"text3d: {run_dir} holds a run stopped before its first checkpoint; starting over", file=sys.stderr)
        metrics = run_stages(config, prior, run_dir, device, resume=args.resume)
    final_dir = refine_dir(run_dir) if config.refine.enabled else run_dir
    print(f"text3d: wrote {export_summary(final_dir, config, metrics)}", file=sys.stderr)
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


def export_summary(folder: Path, config, metrics: dict) -> str:
    """What a stage wrote into ``folder``, in a few words, from its metrics."""
    export = metrics["export"]
    turntable = " and turntable.mp4" if config.export.turntable_frames > 0 else ""
    seconds = metrics["train_seconds"] + export["seconds"]
    return (
        f"{folder}/mesh.{{{','.join(config.export.formats)}}} ({export_details(export)}){turntable} in {seconds:.0f} s"
    )


def run_export(argv: list[str]) -> int:
    from dreamlift.io import read_json_object, remove_leftovers
    from dreamlift.loading import load_prior_model
    from dreamlift.locks import claimed_folder
    from dreamlift.priors.prompts import PromptEmbeddings
    from dreamlift.runtime import resolve_device
    from dreamlift.text3d.config import read_run_config
    from dreamlift.text3d.export import METRICS_FILE, export_particles
    from dreamlift.text3d.runs import load_scenes
    from dreamlift.text3d.surface_colours import PriorRedraw

    parser = OneLineParser(prog="text3d export", description="Export the mesh and turntable of a run again.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument(
        "overrides", nargs="*", help="dotted overrides of the export section, e.g. export.resolution=256"
    )
    device_argument(parser, "auto")
    args = parser.parse_intermixed_args(argv)
    if not args.run_dir.is_dir():
        raise UsageError(f"run folder not found: {args.run_dir}")
    config = read_run_config(args.run_dir, args.overrides)
    device = resolve_device(args.device)
    with claimed_folder(args.run_dir):  # not while the run (or another export) writes it
        metrics_path = args.run_dir / METRICS_FILE
        metrics = read_json_object(metrics_path) if metrics_path.is_file() else {}
        scenes = load_scenes(args.run_dir, config, device)
        redraw = None
        if config.export.redraw.strength > 0:
            prior = load_prior_model(config.prior, device)
            g = config.guidance
            prompts = PromptEmbeddings(prior, config.prompt, g.negative_prompt, g.view_dependent)
            redraw = PriorRedraw(prior, prompts, config.export.redraw, config.seed)
        remove_leftovers(args.run_dir)
        metrics = export_particles(scenes, config.export, args.run_dir, metrics, redraw)
    print(f"text3d export: {export_details(metrics['export'])} → {args.run_dir}", file=sys.stderr)
    return 0


def run_refine(argv: list[str]) -> int:
    from dreamlift.loading import load_prior_model
    from dreamlift.locks import claimed_folder
    from dreamlift.runtime import resolve_device
    from dreamlift.text3d.config import read_run_config
    from dreamlift.text3d.runs import has_progress, refine_dir, refine_run

    parser = OneLineParser(
        prog="text3d refine",
        description="Run the mesh stage (Magic3D: DMTet from the NeRF, textured export) on a finished NeRF run.",
    )
    parser.add_argument("run_dir", type=Path, help="a text3d run folder (stage 1)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. refine.resolution=256")
    parser.add_argument("--steps", type=int, default=None, help="mesh-stage steps (refine.steps)")
    parser.add_argument("--out", type=Path, default=None, help="folder of the mesh stage (default: RUN_DIR/refine)")
    device_argument(parser, None)
    parser.add_argument("--resume", action="store_true", help="continue the mesh stage in --out from its checkpoint")
    args = parser.parse_intermixed_args(argv)
    if not args.run_dir.is_dir():
        raise UsageError(f"run folder not found: {args.run_dir}")
    out = args.out if args.out is not None else refine_dir(args.run_dir)
    if out.resolve() == args.run_dir.resolve():
        raise UsageError("the mesh stage is written beside its NeRF run: --out must name another folder")
    values = given({"refine.steps": args.steps, "device": args.device})
    config = read_run_config(out if args.resume else args.run_dir, args.overrides, values)
    device = resolve_device(config.device)
    prior = load_prior_model(config.prior, device)
    # The NeRF run is read while nothing writes it; the mesh stage's folder has one writer.
    with claimed_folder(args.run_dir), claimed_folder(out):
        if not args.resume and has_progress(out):
            raise UsageError(f"{out} already holds a mesh stage; pass --resume to continue it, or choose another --out")
        metrics = refine_run(config, prior, args.run_dir, out, device, resume=args.resume)
    print(f"text3d refine: wrote {export_summary(out, config, metrics)}", file=sys.stderr)
    return 0


def run_sample_prior(argv: list[str]) -> int:
    import torch

    from dreamlift.io import image_grid, write_png
    from dreamlift.loading import load_prior_model
    from dreamlift.priors.diffusion import PriorConfig
    from dreamlift.priors.sampling import sample_images
    from dreamlift.runtime import check_seed, resolve_device

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
    if not args.prompt.strip():
        raise UsageError("the prompt is empty")
    if args.num < 1 or args.steps < 1:
        raise UsageError("--num and --steps must be >= 1")
    check_seed(args.seed, "--seed")
    device = resolve_device(args.device)
    prior = load_prior_model(PriorConfig(model=args.model), device)
    out = args.out or Path("outputs") / f"{slugify(args.prompt)}-samples.png"
    generator = torch.Generator().manual_seed(args.seed)
    images = sample_images(
        prior, [args.prompt.strip()] * args.num, args.steps, args.guidance, generator, show_progress=True
    )
    write_png(image_grid(images, columns=8), out)
    print(f"text3d sample-prior: {args.num} samples → {out}", file=sys.stderr)
    return 0


def run_train_prior(argv: list[str]) -> int:
    from dreamlift.config import load_config
    from dreamlift.embedded.train import PriorTrainer, TrainPriorConfig
    from dreamlift.locks import claimed_folder
    from dreamlift.runtime import resolve_device

    parser = training_parser(
        "text3d train-prior", "Train the embedded prior (resumable).", "folder for the diffusers-format model",
        "TrainPriorConfig", "unet_steps=100",
    )  # fmt: skip
    args = parser.parse_intermixed_args(argv)
    config = load_config(TrainPriorConfig, args.config, args.overrides)
    device = resolve_device(args.device)
    with claimed_folder(work_folder(args)) as work:  # one trainer at a time in a work folder
        PriorTrainer(config, work, args.out, str(device)).run()
    print(f"text3d train-prior: prior → {args.out}", file=sys.stderr)
    return 0
