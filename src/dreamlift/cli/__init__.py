"""Command-line entry points: ``text3d`` (and its subcommands) and ``text2video`` (and its).

Every user error is one line on stderr and exit code 2 (:func:`dreamlift.cli.common.guarded`); an interrupted
run keeps its checkpoint and says how to resume.
"""

from __future__ import annotations

import sys
from functools import partial

from dreamlift.cli.batch import BATCH_INTERRUPTED, run_batch_command
from dreamlift.cli.common import guarded
from dreamlift.cli.report import REPORT_INTERRUPTED, run_report
from dreamlift.cli.text2video import run_text2video, run_train_motion
from dreamlift.cli.text3d import run_export, run_refine, run_sample_prior, run_text3d, run_train_prior

TEXT3D_SUBCOMMANDS = {
    "export": run_export,
    "refine": run_refine,
    "sample-prior": run_sample_prior,
    "train-prior": run_train_prior,
}


def text3d_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "batch":
        return guarded("text3d batch", run_batch_command("text3d"), argv[1:], BATCH_INTERRUPTED)
    if argv and argv[0] == "report":
        return guarded("text3d report", partial(run_report, "text3d"), argv[1:], REPORT_INTERRUPTED)
    if argv and argv[0] in TEXT3D_SUBCOMMANDS:
        return guarded(f"text3d {argv[0]}", TEXT3D_SUBCOMMANDS[argv[0]], argv[1:])
    return guarded("text3d", run_text3d, argv)


def text2video_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":
        return guarded(
            "text2video train",
            run_train_motion,
            argv[1:],
            "the last checkpoint is kept; run the same command to resume",
        )
    if argv and argv[0] == "batch":
        return guarded("text2video batch", run_batch_command("text2video"), argv[1:], BATCH_INTERRUPTED)
    if argv and argv[0] == "report":
        return guarded("text2video report", partial(run_report, "text2video"), argv[1:], REPORT_INTERRUPTED)
    return guarded("text2video", run_text2video, argv, "nothing was written")
