"""What the entry points share: the one-line argument parser, run folders, and the one error guard.

The guard is the only place where the library's errors become what a user sees: a :class:`UsageError` is one
line on stderr and exit code 2; Ctrl-C says what was kept and exits 130. The batch runner translates the same
errors the same way (a UsageError is refused, not retried).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from dreamlift.errors import UsageError

KEEPS_CHECKPOINT = "the last checkpoint is kept, continue with --resume"
"""What an interrupted text3d run keeps."""
TRAINING_RESUMES = "the last checkpoint is kept; run the same command to resume"
"""What an interrupted training keeps."""


@dataclass(frozen=True)
class Command:
    """A subcommand: the function of its arguments, a line for the help, and what an interrupted run keeps."""

    run: Callable[[list[str]], int]
    summary: str
    on_interrupt: str = "nothing is lost"


def print_version(prog: str) -> int:
    """Print ``PROG VERSION`` (the installed package's); returns 0."""
    print(f"{prog} {version('dreamlift')}")
    return 0


def subcommands_epilog(prog: str, commands: dict[str, Command], preset_dir: Path) -> str:
    """The end of a command's help: its subcommands, each with its line, and the presets shipped in
    ``preset_dir``."""
    from dreamlift.config import preset_names, preset_summary

    lines = [f"subcommands ({prog} NAME --help for each):"]
    lines += [f"  {prog} {name:<13} {command.summary}" for name, command in commands.items()]
    lines += ["", "presets (--config NAME, or a YAML file with 'base: NAME'):"]
    lines += [f"  {name:<16} {preset_summary(name, preset_dir)}" for name in preset_names(preset_dir)]
    return "\n".join(lines)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as a :class:`UsageError` (one line, exit 2) instead of usage + message."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def device_argument(parser: argparse.ArgumentParser, default: str | None) -> None:
    """The ``--device auto|cpu|cuda`` option every command has."""
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=default)


def given(values: dict) -> dict:
    """The command-line values that were given (not None), by their dotted config keys."""
    return {key: value for key, value in values.items() if value is not None}


def training_parser(prog: str, description: str, out_help: str, config_class: str, example: str) -> OneLineParser:
    """The arguments every resumable training command takes: ``--out``, ``--work``, ``--config``, ``--device`` and
    dotted overrides of ``config_class`` (e.g. ``example``)."""
    parser = OneLineParser(prog=prog, description=description)
    parser.add_argument("overrides", nargs="*", help=f"dotted {config_class} overrides, e.g. {example}")
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument("--work", type=Path, default=None, help="folder for data and checkpoints (default: OUT.work)")
    parser.add_argument("--config", default=None, help=f"YAML file of {config_class} fields")
    device_argument(parser, "auto")
    return parser


def work_folder(args: argparse.Namespace) -> Path:
    """A training command's work folder: ``--work``, or ``OUT.work`` beside ``--out``."""
    return args.work or args.out.with_name(args.out.name + ".work")


OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=.*", re.DOTALL)
"""A dotted config override on the command line: ``train.steps=1200``."""


def split_prompt(prompt: str | None, overrides: list[str]) -> tuple[str | None, list[str]]:
    """The prompt and the overrides of a command line whose first positional argument may be either: in
    ``text3d --resume --out D train.steps=3`` the first positional is an override, and there is no prompt."""
    if prompt is not None and OVERRIDE.fullmatch(prompt):
        return None, [prompt, *overrides]
    return prompt, overrides


def guarded(
    prog: str, command: Callable[[list[str]], int], argv: list[str], on_interrupt: str = KEEPS_CHECKPOINT
) -> int:
    """Run ``command(argv)``; a usage error is one line and exit 2, Ctrl-C a note and exit 130."""
    try:
        return command(argv)
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; {on_interrupt}", file=sys.stderr)
        return 130
