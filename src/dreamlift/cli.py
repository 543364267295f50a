"""Command-line entry points: ``text3d`` (and its subcommands) and ``text2video``.

Every user error is one line on stderr and exit code 2; an interrupted run keeps its checkpoint and says how
to resume.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from dreamlift.errors import UsageError

DEFAULT_PRESET = "dreamfusion"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as a :class:`UsageError` (one line, exit 2) instead of usage + message."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def slugify(prompt: str) -> str:
    """A folder name from a prompt: ``"A red cube!"`` → ``"a-red-cube"``."""
    return re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:60] or "run"


def fresh_run_dir(prompt: str, root: Path = Path("outputs")) -> Path:
    """``outputs/<slug>``, or ``outputs/<slug>-2``, ``-3``… if taken."""
    base = root / slugify(prompt)
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def latest_run_dir(prompt: str, root: Path = Path("outputs")) -> Path:
    """The most recent default run folder of a prompt (for ``--resume`` without ``--out``)."""
    base = root / slugify(prompt)
    runs = [p for p in [base, *root.glob(f"{base.name}-*")] if (p / "config.yaml").is_file()]
    if not runs:
        raise UsageError(f"no earlier run of this prompt under {root}/ to resume; pass --out RUN_DIR")
    return max(runs, key=lambda p: (p / "config.yaml").stat().st_mtime)


def _text3d_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="text3d",
        description="Make a 3D asset from a text prompt by score distillation. "
        "Subcommands: 'text3d export RUN_DIR', 'text3d refine RUN_DIR', 'text3d batch MANIFEST --out DIR', "
        "'text3d sample-prior PROMPT', "
        "'text3d train-prior --out DIR'.",
    )
    parser.add_argument("prompt", nargs="?", help="what to make, e.g. \"a red cube\"")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. guidance.scale=50")
    parser.add_argument("--config", default=None, help=f"preset name or YAML path (default: {DEFAULT_PRESET})")
    parser.add_argument("--model", default=None, help="hub id or diffusers folder of the prior (default: embedded)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps")
    parser.add_argument("--seed", type=int, default=None, help="random seed (recorded in config.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: outputs/<prompt>)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    return parser


def load_model(config, device):
    """Load the prior named by ``config.prior.model``; say so when the embedded default is a random stand-in."""
    from dreamlift.embedded import embedded_prior_path
    from dreamlift.priors.diffusion import load_prior

    path = config.prior.model
    if path == "embedded":
        path, trained = embedded_prior_path()
        if not trained:
            print(
                "warning: this install carries no trained embedded prior; using a random toy model, "
                "so the output is meaningless (pass --model for real weights)",
                file=sys.stderr,
            )
    return load_prior(config.prior, path, device)


def run_text3d(argv: list[str]) -> int:
    from dreamlift.config import load_config
    from dreamlift.outputs import ensure_writable_dir
    from dreamlift.pipelines.text_to_3d import Text3DConfig, read_run_config, refine_dir, resolve_device, run_stages

    args = _text3d_parser().parse_intermixed_args(argv)
    values = {
        key: value
        for key, value in (("train.steps", args.steps), ("seed", args.seed), ("prior.model", args.model), ("device", args.device))
        if value is not None
    }
    if args.resume:
        if args.prompt is None and args.out is None:
            raise UsageError("--resume needs the run folder (--out) or the prompt of the run")
        run_dir = args.out if args.out is not None else latest_run_dir(args.prompt)
        config = read_run_config(run_dir, args.overrides, values)
        if args.prompt is not None and args.prompt.strip() != config.prompt:
            raise UsageError(f"{run_dir} is a run of \"{config.prompt}\", not \"{args.prompt}\"")
    else:
        if args.prompt is None or not args.prompt.strip():
            raise UsageError("the prompt is empty; say what to make, e.g. text3d \"a red cube\"")
        values["prompt"] = args.prompt.strip()
        config = load_config(Text3DConfig, args.config or DEFAULT_PRESET, args.overrides, values)
        run_dir = args.out if args.out is not None else fresh_run_dir(config.prompt)
        if (run_dir / "config.yaml").exists():
            raise UsageError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    device = resolve_device(config.device)
    prior = load_model(config, device)
    ensure_writable_dir(run_dir)
    print(f"text3d: \"{config.prompt}\" on {device}, seed {config.seed}, {config.train.steps} steps → {run_dir}", file=sys.stderr)
    metrics = run_stages(config, prior, run_dir, device, resume=args.resume)
    final_dir = refine_dir(run_dir) if config.refine.enabled else run_dir
    print(f"text3d: wrote {export_summary(final_dir, config, metrics)}", file=sys.stderr)
    return 0


def export_details(stats: dict) -> str:
    """An export's statistics in a few words: faces, threshold (NeRF exports), watertight, textured."""
    details = [f"{stats['faces']} faces"]
    if "threshold" in stats:
        details.append(f"threshold {stats['threshold']:.3g}")
    details += [word for word in ("watertight", "textured") if stats.get(word)]
    return ", ".join(details)


def export_summary(folder: Path, config, metrics: dict) -> str:
    """What a stage wrote into ``folder``, in a few words, from its metrics."""
    export = metrics["export"]
    turntable = " and turntable.mp4" if config.export.turntable_frames > 0 else ""
    seconds = metrics["train_seconds"] + export["seconds"]
    return f"{folder}/mesh.{{{','.join(config.export.formats)}}} ({export_details(export)}){turntable} in {seconds:.0f} s"


def run_export(argv: list[str]) -> int:
    import json

    from dreamlift.pipelines.text_to_3d import export_particles, load_scenes, read_run_config, resolve_device
    from dreamlift.outputs import write_text

    parser = OneLineParser(prog="text3d export", description="Export the mesh and turntable of a run again.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("overrides", nargs="*", help="dotted overrides of the export section, e.g. export.resolution=256")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_intermixed_args(argv)
    if not args.run_dir.is_dir():
        raise UsageError(f"run folder not found: {args.run_dir}")
    config = read_run_config(args.run_dir, args.overrides)
    device = resolve_device(args.device)
    exported = export_particles(load_scenes(args.run_dir, config, device), config.export, args.run_dir)
    stats = exported["export"]
    metrics_path = args.run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics.update(exported)
    write_text(metrics_path, json.dumps(metrics, indent=2))
    print(f"text3d export: {export_details(stats)} → {args.run_dir}", file=sys.stderr)
    return 0


def run_refine(argv: list[str]) -> int:
    from dreamlift.outputs import ensure_writable_dir
    from dreamlift.pipelines.text_to_3d import read_run_config, refine_dir, refine_run, resolve_device

    parser = OneLineParser(
        prog="text3d refine",
        description="Run the mesh stage (Magic3D: DMTet from the NeRF, textured export) on a finished NeRF run.",
    )
    parser.add_argument("run_dir", type=Path, help="a text3d run folder (stage 1)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. refine.resolution=256")
    parser.add_argument("--steps", type=int, default=None, help="mesh-stage steps (refine.steps)")
    parser.add_argument("--out", type=Path, default=None, help="folder of the mesh stage (default: RUN_DIR/refine)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--resume", action="store_true", help="continue the mesh stage in --out from its checkpoint")
    args = parser.parse_intermixed_args(argv)
    if not args.run_dir.is_dir():
        raise UsageError(f"run folder not found: {args.run_dir}")
    out = args.out if args.out is not None else refine_dir(args.run_dir)
    values = {key: value for key, value in (("refine.steps", args.steps), ("device", args.device)) if value is not None}
    if args.resume:
        config = read_run_config(out, args.overrides, values)
    else:
        config = read_run_config(args.run_dir, args.overrides, values)
        if (out / "config.yaml").exists():
            raise UsageError(f"{out} already holds a mesh stage; pass --resume to continue it, or choose another --out")
    device = resolve_device(config.device)
    prior = load_model(config, device)
    ensure_writable_dir(out)
    print(f"text3d refine: \"{config.prompt}\" on {device}, {config.refine.steps} mesh steps → {out}", file=sys.stderr)
    metrics = refine_run(config, prior, args.run_dir, out, device, resume=args.resume)
    print(f"text3d refine: wrote {export_summary(out, config, metrics)}", file=sys.stderr)
    return 0


def run_sample_prior(argv: list[str]) -> int:
    import imageio.v3 as iio
    import torch

    from dreamlift.outputs import atomic_path
    from dreamlift.pipelines.text_to_3d import Text3DConfig, resolve_device
    from dreamlift.priors.sampling import sample_images

    parser = OneLineParser(prog="text3d sample-prior", description="Write a grid of 2D samples of the prior.")
    parser.add_argument("prompt")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--num", type=int, default=8, help="samples (a grid of up to 8 per row)")
    parser.add_argument("--steps", type=int, default=30, help="sampler steps")
    parser.add_argument("--guidance", type=float, default=7.5, help="CFG scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: outputs/<prompt>-samples.png)")
    args = parser.parse_args(argv)
    if not args.prompt.strip():
        raise UsageError("the prompt is empty")
    if args.num < 1 or args.steps < 1:
        raise UsageError("--num and --steps must be >= 1")
    config = Text3DConfig(prompt=args.prompt)
    config.prior.model = args.model
    device = resolve_device(args.device)
    prior = load_model(config, device)
    out = args.out or Path("outputs") / f"{slugify(args.prompt)}-samples.png"
    images = sample_images(
        prior, [args.prompt.strip()] * args.num, args.steps, args.guidance, torch.Generator().manual_seed(args.seed), show_progress=True
    )
    columns = min(8, args.num)
    rows = -(-args.num // columns)
    padded = torch.cat([images, images.new_ones(rows * columns - args.num, *images.shape[1:])])
    grid = padded.reshape(rows, columns, *images.shape[1:]).permute(0, 3, 1, 4, 2).reshape(rows * images.shape[2], columns * images.shape[3], 3)
    with atomic_path(out) as tmp:
        iio.imwrite(tmp, (grid.cpu().numpy() * 255).round().astype("uint8"), extension=".png")
    print(f"text3d sample-prior: {args.num} samples → {out}", file=sys.stderr)
    return 0


def run_train_prior(argv: list[str]) -> int:
    from dreamlift.embedded.train import main

    main(argv)
    return 0


def run_text3d_batch(argv: list[str]) -> int:
    from dreamlift.batch.run import run_batch

    return run_batch("text3d", argv)


def run_text2video_batch(argv: list[str]) -> int:
    from dreamlift.batch.run import run_batch

    return run_batch("text2video", argv)


BATCH_INTERRUPTED = "finished jobs are kept; run the same command to do the rest"

TEXT3D_SUBCOMMANDS = {
    "export": run_export,
    "refine": run_refine,
    "sample-prior": run_sample_prior,
    "train-prior": run_train_prior,
}


def _guarded(prog: str, run, argv: list[str], on_interrupt: str = "the last checkpoint is kept, continue with --resume") -> int:
    try:
        return run(argv)
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; {on_interrupt}", file=sys.stderr)
        return 130


def text3d_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "batch":
        return _guarded("text3d batch", run_text3d_batch, argv[1:], BATCH_INTERRUPTED)
    if argv and argv[0] in TEXT3D_SUBCOMMANDS:
        return _guarded(f"text3d {argv[0]}", TEXT3D_SUBCOMMANDS[argv[0]], argv[1:])
    return _guarded("text3d", run_text3d, argv)


def _text2video_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="text2video",
        description="Make a short video from a text prompt with an image prior and temporal layers. "
        "Subcommands: 'text2video train [--clips DIR] --out DIR' trains temporal layers; "
        "'text2video batch MANIFEST --out DIR' runs a manifest of prompts.",
    )
    parser.add_argument("prompt", help="what to show, e.g. \"a blue sphere moving right\"")
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
    parser.add_argument("--motion-adapter", default=None, help="temporal layers: folder, hub id, AnimateDiff file, or 'embedded'")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: outputs/video/<prompt>)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    return parser


def load_motion_adapter(config, unet):
    """The temporal layers named by ``config.motion_adapter``, checked against ``unet``."""
    from dreamlift.embedded import EMBEDDED_MOTION_DIR
    from dreamlift.video.temporal import TemporalAdapter, load_temporal_adapter

    source = config.motion_adapter
    if source == "embedded":
        if (EMBEDDED_MOTION_DIR / "config.json").is_file():
            source = EMBEDDED_MOTION_DIR
        else:
            print(
                "warning: this install carries no trained embedded motion model; using zero-initialised temporal "
                "layers, so every frame is the same image (pass --motion-adapter, or --mode zero-shot)",
                file=sys.stderr,
            )
            return TemporalAdapter.for_unet(unet, text_attention=False, num_attention_heads=1)
    adapter = load_temporal_adapter(source)
    try:
        adapter.check_fits(unet)
    except ValueError as err:
        raise UsageError(f"{err} (pass a matching --motion-adapter, or use --mode zero-shot)") from None
    return adapter


def run_text2video(argv: list[str]) -> int:
    from dreamlift.config import load_config
    from dreamlift.outputs import ensure_writable_dir
    from dreamlift.pipelines.text_to_3d import resolve_device
    from dreamlift.pipelines.text_to_video import Text2VideoConfig, TextToVideo, video_names

    args = _text2video_parser().parse_intermixed_args(argv)
    if not args.prompt.strip():
        raise UsageError("the prompt is empty; say what to show, e.g. text2video \"a blue sphere moving right\"")
    flags = {
        "frames": args.frames, "fps": args.fps, "steps": args.steps, "guidance": args.guidance, "seed": args.seed,
        "videos": args.videos, "mode": args.mode, "prior.model": args.model, "motion_adapter": args.motion_adapter,
        "device": args.device,
    }
    values = {key: value for key, value in flags.items() if value is not None}
    values["prompt"] = args.prompt.strip()
    config = load_config(Text2VideoConfig, args.config, args.overrides, values)
    run_dir = args.out if args.out is not None else fresh_run_dir(config.prompt, Path("outputs") / "video")
    if (run_dir / "config.yaml").exists():
        raise UsageError(f"{run_dir} already holds a run; choose another --out")
    device = resolve_device(config.device)
    prior = load_model(config, device)
    adapter = load_motion_adapter(config, prior.unet) if config.mode == "animate" else None
    try:
        pipeline = TextToVideo(config, prior, adapter, run_dir)
    except ValueError as err:
        raise UsageError(str(err)) from None
    ensure_writable_dir(run_dir)
    print(f"text2video: \"{config.prompt}\" ({config.mode}) on {device}, seed {config.seed} → {run_dir}", file=sys.stderr)
    metrics = pipeline.run()
    names = video_names(config.videos)
    listed = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
    print(f"text2video: wrote {run_dir}/{listed}.{{mp4,gif}} in {metrics['total_seconds']:.0f} s", file=sys.stderr)
    return 0


def run_train_motion(argv: list[str]) -> int:
    from dreamlift.config import load_config
    from dreamlift.outputs import ensure_writable_dir
    from dreamlift.pipelines.text_to_3d import resolve_device
    from dreamlift.pipelines.text_to_video import Text2VideoConfig
    from dreamlift.priors.diffusion import PriorConfig
    from dreamlift.video.train import MotionTrainer, TrainMotionConfig

    parser = OneLineParser(
        prog="text2video train",
        description="Train temporal layers for an image prior (its weights frozen) on clips; resumable.",
    )
    parser.add_argument("--clips", default="procedural", help="folder of videos with .txt captions (default: procedural clips)")
    parser.add_argument("overrides", nargs="*", help="dotted TrainMotionConfig overrides, e.g. steps=500")
    parser.add_argument("--out", type=Path, required=True, help="folder for the trained temporal layers")
    parser.add_argument("--work", type=Path, default=None, help="folder for data and checkpoints (default: OUT.work)")
    parser.add_argument("--model", default="embedded", help="image prior: hub id, diffusers folder, or 'embedded'")
    parser.add_argument("--config", default=None, help="YAML file of TrainMotionConfig fields")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_intermixed_args(argv)
    config = load_config(TrainMotionConfig, args.config, args.overrides, {"data": args.clips})
    if config.data != "procedural" and not Path(config.data).is_dir():
        raise UsageError(f"clip folder not found: {config.data}")
    device = resolve_device(args.device)
    # Temporal layers train in float32 (the prior too, so hidden states and layers agree on a GPU).
    prior = load_model(Text2VideoConfig(prior=PriorConfig(model=args.model, dtype="float32")), device)
    work = args.work or args.out.with_name(args.out.name + ".work")
    ensure_writable_dir(work)
    try:
        trainer = MotionTrainer(config, prior, work, args.out, str(device))
    except ValueError as err:
        raise UsageError(str(err)) from None
    trainer.run()
    print(f"text2video train: temporal layers → {args.out}", file=sys.stderr)
    return 0


def text2video_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":
        return _guarded("text2video train", run_train_motion, argv[1:], "the last checkpoint is kept; run the same command to resume")
    if argv and argv[0] == "batch":
        return _guarded("text2video batch", run_text2video_batch, argv[1:], BATCH_INTERRUPTED)
    return _guarded("text2video", run_text2video, argv, "nothing was written")
