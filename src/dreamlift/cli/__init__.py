"""Command-line entry points: ``text3d`` (and its subcommands) and ``text2video`` (and its).

``text3d PROMPT`` is ``text3d make PROMPT``; any other first word that names a subcommand runs it. Every user
error is one line on stderr and exit code 2 (:func:`dreamlift.cli.common.guarded`); an interrupted run keeps its
checkpoint and says how to resume.
"""

from __future__ import annotations

import sys
from functools import partial

from dreamlift.cli.batch import BATCH_INTERRUPTED, run_batch_command
from dreamlift.cli.common import (
    KEEPS_CHECKPOINT,
    TRAINING_RESUMES,
    Command,
    guarded,
    print_version,
    subcommands_epilog,
)
from dreamlift.cli.report import REPORT_INTERRUPTED, run_report
from dreamlift.cli.studio import SERVE_INTERRUPTED, run_serve
from dreamlift.cli.text2video import run_text2video, run_train_motion
from dreamlift.cli.text3d import run_config, run_export, run_refine, run_sample_prior, run_text3d, run_train_prior


def make_3d(argv: list[str]) -> int:
    """``text3d make``, its help ending with the subcommands and presets."""
    from dreamlift.config import PRESET_DIR

    return run_text3d(argv, subcommands_epilog("text3d", TEXT3D_COMMANDS, PRESET_DIR))


def make_video(argv: list[str]) -> int:
    """``text2video make``, its help ending with the subcommands and presets."""
    from dreamlift.config import VIDEO_PRESET_DIR

    return run_text2video(argv, subcommands_epilog("text2video", TEXT2VIDEO_COMMANDS, VIDEO_PRESET_DIR))


TEXT3D_COMMANDS = {
    "make": Command(make_3d, "make a 3D asset from a prompt (the default: `text3d PROMPT`)", KEEPS_CHECKPOINT),
    "export": Command(run_export, "export a run's mesh and turntable again"),
    "refine": Command(run_refine, "run the refine stage (Magic3D's DMTet mesh) on a NeRF run", KEEPS_CHECKPOINT),
    "config": Command(run_config, "print the resolved config of a preset with overrides"),
    "report": Command(partial(run_report, "text3d"), "write a run's or a batch's HTML report", REPORT_INTERRUPTED),
    "batch": Command(run_batch_command("text3d"), "run a manifest of prompts, resumable", BATCH_INTERRUPTED),
    "serve": Command(run_serve, "start the studio: a local web page to queue jobs and watch them", SERVE_INTERRUPTED),
    "sample-prior": Command(run_sample_prior, "write a grid of the prior's 2D samples of a prompt"),
    "train-prior": Command(run_train_prior, "train the embedded prior (resumable)", TRAINING_RESUMES),
}
"""``text3d``'s subcommands."""
TEXT2VIDEO_COMMANDS = {
    "make": Command(make_video, "make a clip from a prompt (the default: `text2video PROMPT`)", "nothing was written"),
    "train": Command(run_train_motion, "train a motion adapter for an image prior (resumable)", TRAINING_RESUMES),
    "report": Command(partial(run_report, "text2video"), "write an output's or a batch's report", REPORT_INTERRUPTED),
    "batch": Command(run_batch_command("text2video"), "run a manifest of prompts, resumable", BATCH_INTERRUPTED),
}
"""``text2video``'s subcommands."""


def dispatch(prog: str, commands: dict[str, Command], argv: list[str] | None) -> int:
    """Run the subcommand ``argv`` names (``make`` when its first word names none); ``--version`` prints the
    version."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["--version"], ["-V"]):
        return print_version(prog)
    name = argv[0] if argv and argv[0] in commands else "make"
    rest = argv[1:] if argv and argv[0] == name else argv
    command = commands[name]
    return guarded(prog if name == "make" else f"{prog} {name}", command.run, rest, command.on_interrupt)


def text3d_main(argv: list[str] | None = None) -> int:
    return dispatch("text3d", TEXT3D_COMMANDS, argv)


def text2video_main(argv: list[str] | None = None) -> int:
    return dispatch("text2video", TEXT2VIDEO_COMMANDS, argv)
