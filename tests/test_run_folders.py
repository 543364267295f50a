"""Run folders trusted with nothing: checkpoints that are not ours, two writers, runs killed before their first
checkpoint, exports killed or refused half way; each ends in one line and exit 2 with nothing changed."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import FAST_TEXT3D

from dreamlift.cli import text3d_main
from dreamlift.errors import UsageError
from dreamlift.io import atomic_path
from dreamlift.locks import LOCK_FILE, claimed_folder, writer_lock

MARKER_NAME = "code-ran"


class RunsCode:
    """A pickle payload that, unpickled by a trusting reader, creates a marker file (as ``os.system`` could
    run anything)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def run_args(prior_dir, out, *extra) -> list[str]:
    return ["a red cube", "--model", str(prior_dir), "--steps", "2", "--out", str(out), *FAST_TEXT3D, *extra]


@pytest.fixture(scope="module")
def finished_run(tiny_prior_dir, tmp_path_factory):
    """A finished two-step run (a template: tests work on copies)."""
    out = tmp_path_factory.mktemp("template") / "run"
    assert text3d_main(run_args(tiny_prior_dir, out)) == 0
    return out


@pytest.fixture
def run(finished_run, tmp_path):
    return shutil.copytree(finished_run, tmp_path / "run")


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def malicious_checkpoint(path, marker) -> None:
    state = torch.load(path, weights_only=True)
    state["metrics"]["note"] = RunsCode(marker)
    torch.save(state, path)


@pytest.mark.parametrize(
    "command",
    [
        lambda run: ["export", str(run)],
        lambda run: ["refine", str(run), "refine.steps=2"],
        lambda run: ["--resume", "--out", str(run), "--steps", "3"],
    ],
    ids=["export", "refine", "resume"],
)
def test_a_checkpoint_that_would_run_code_is_refused_and_runs_none(run, tmp_path, capsys, command):
    marker = tmp_path / MARKER_NAME
    malicious_checkpoint(run / "checkpoints" / "last.pt", marker)
    # The payload does run code when a reader trusts it: the test would see it.
    torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert marker.is_file()
    marker.unlink()
    before = snapshot(run)
    capsys.readouterr()

    assert text3d_main(command(run)) == 2
    assert "is not a checkpoint dreamlift can read" in error_line(capsys)
    assert not marker.exists()
    assert snapshot(run) == before and not (run / "refine").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]), "is not a checkpoint dreamlift"),
        (lambda path: path.write_bytes(b"not a checkpoint at all"), "is not a checkpoint dreamlift"),
        (lambda path: torch.save([1, 2, 3], path), "holds a list, not a mapping"),
        (lambda path: torch.save({"step": 2, "stage": "nerf", "metrics": {}}, path), "has no 'scenes'"),
        (lambda path: torch.save({"step": 2, "stage": "fog", "scenes": [], "metrics": {}}, path), "names no stage"),
        (
            lambda path: torch.save({"step": 2, "stage": "nerf", "scenes": [{"x": torch.ones(2)}]}, path),
            "does not fit this run",
        ),
    ],
    ids=["cut-in-half", "foreign-bytes", "a-list", "no-scenes", "unknown-stage", "other-tensors"],
)
def test_a_checkpoint_that_is_not_ours_is_one_line_exit_2_and_nothing_changes(run, capsys, damage, message):
    damage(run / "checkpoints" / "last.pt")
    before = snapshot(run)
    capsys.readouterr()
    for command in (["export", str(run)], ["refine", str(run), "refine.steps=2"]):
        assert text3d_main(command) == 2
        assert message in error_line(capsys)
        assert snapshot(run) == before and not (run / "refine").exists()


def test_a_resumed_checkpoint_with_a_foreign_state_is_refused(run, capsys):
    path = run / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    state["optimizers"] = []  # one state for each of one optimiser is expected
    torch.save(state, path)
    before = snapshot(run)
    capsys.readouterr()
    assert text3d_main(["--resume", "--out", str(run), "--steps", "3"]) == 2
    assert "does not fit this run" in error_line(capsys)
    assert snapshot(run) == before


HOLD_LOCK = (
    "import sys, time; from pathlib import Path; from dreamlift.locks import writer_lock\n"
    "with writer_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True); time.sleep(60)\n"
)


def hold_lock(folder) -> subprocess.Popen:
    """Another process that writes ``folder`` (holds its lock) until it is killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_is_refused_while_the_first_lives_and_a_dead_ones_lock_never_blocks(
    run, tiny_prior_dir, tmp_path, capsys
):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for folder in (run, fresh):
        holder = hold_lock(folder)
        before = snapshot(folder)
        capsys.readouterr()
        commands = [run_args(tiny_prior_dir, folder), ["export", str(run)], ["--resume", "--out", str(run)]]
        for command in commands if folder == run else commands[:1]:
            assert text3d_main(command) == 2
            line = error_line(capsys)
            assert f"is being written by pid {holder.pid}" in line, line
        assert snapshot(folder) == before
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed writers' locks are gone with them: the fresh folder takes a run now.
    assert text3d_main(run_args(tiny_prior_dir, fresh)) == 0
    assert (fresh / "mesh.glb").is_file()


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0_or_starts_over(
    tiny_prior_dir, tmp_path, capsys, monkeypatch
):
    from dreamlift.text3d.trainer import TextTo3D

    def killed(self):
        raise SystemExit("killed")  # as kill -9 before step 1 would leave it: config.yaml and nothing else

    for out in (tmp_path / "resumed", tmp_path / "rerun"):
        with monkeypatch.context() as patch:
            patch.setattr(TextTo3D, "train_step", killed)
            with pytest.raises(SystemExit):
                text3d_main(run_args(tiny_prior_dir, out))
        assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_FILE, "config.yaml"])
    # --resume with an override as its only positional (the README's form) starts over from step 0
    assert text3d_main(["--resume", "--out", str(tmp_path / "resumed"), "train.steps=3"]) == 0
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)["step"] == 3
    # the same command again, without --resume, takes the folder over
    assert text3d_main(run_args(tiny_prior_dir, tmp_path / "rerun")) == 0
    assert "stopped before its first checkpoint; starting over" in capsys.readouterr().err
    assert (tmp_path / "rerun" / "mesh.glb").is_file()


def test_resume_with_config_is_refused(run, capsys):
    assert text3d_main(["--resume", "--out", str(run), "--config", "magic3d"]) == 2
    assert "--config does not apply to --resume" in error_line(capsys)


def test_an_export_with_unreadable_metrics_changes_nothing(run, capsys):
    (run / "metrics.json").write_text("{not json")
    before = snapshot(run)
    capsys.readouterr()
    assert text3d_main(["export", str(run), "export.resolution=20"]) == 2
    line = error_line(capsys)
    assert "cannot read" in line and "metrics.json" in line
    assert snapshot(run) == before


def test_an_export_that_fails_half_way_leaves_the_old_files_and_a_killed_ones_leftovers_go(run, monkeypatch):
    import dreamlift.text3d.export as export

    before = snapshot(run)

    def dies(*args, **kwargs):
        raise RuntimeError("killed while writing the turntable")

    with monkeypatch.context() as patch:  # the meshes are written, then the turntable fails
        patch.setattr(export, "render_turntable", dies)
        with pytest.raises(RuntimeError):
            text3d_main(["export", str(run), "export.resolution=20"])
    assert snapshot(run) == before  # meshes, turntable and metrics still belong together

    # What kill -9 leaves (a staging folder half moved, a temporary turntable) goes with the next export.
    (run / ".staging.x1y2" / "particle-1").mkdir(parents=True)
    (run / ".staging.x1y2" / "mesh.ply").write_bytes(b"new")
    (run / ".turntable.a1b2.tmp.mp4").write_bytes(b"half")
    assert text3d_main(["export", str(run), "export.resolution=20"]) == 0
    assert not list(run.glob(".staging.*")) and not list(run.glob(".*.tmp*"))
    assert snapshot(run)["mesh.glb"] != before["mesh.glb"]  # exported anew at 20 cells


def test_refine_refused_leaves_no_folder(run, tmp_path, capsys):
    (run / "checkpoints" / "last.pt").write_bytes(b"junk")
    assert text3d_main(["refine", str(run), "--out", str(tmp_path / "deep" / "refined")]) == 2
    assert "is not a checkpoint" in error_line(capsys)
    assert not (tmp_path / "deep").exists()
    assert text3d_main(["refine", str(run), "--out", str(run)]) == 2
    assert "must name another folder" in error_line(capsys)


def test_claimed_folder_removes_what_it_made_when_refused_and_keeps_what_it_found(tmp_path):
    made = tmp_path / "a" / "b"
    with pytest.raises(UsageError), claimed_folder(made):
        raise UsageError("refused")
    assert not (tmp_path / "a").exists()
    found = tmp_path / "found"
    found.mkdir()
    with pytest.raises(UsageError), claimed_folder(found):
        raise UsageError("refused")
    assert found.is_dir()
    with claimed_folder(made), pytest.raises(UsageError, match="is being written by pid"):
        with writer_lock(made):
            pass


def test_a_waiting_writer_gets_the_folder_when_the_first_dies(tmp_path):
    holder = hold_lock(tmp_path)
    start = time.time()
    killer = subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -9 {holder.pid}"])
    with writer_lock(tmp_path, wait=True):
        waited = time.time() - start
    killer.wait()
    holder.wait()
    assert waited >= 0.4


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import dreamlift.io as io

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(io.Path, "write_bytes", full)
        with pytest.raises(UsageError, match=r"no space left on the device to write .*last\.pt"):
            io.save_torch(tmp_path / "last.pt", {"step": 1})
    # ffmpeg says a full disk as a broken pipe: the free space tells
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(UsageError, match="no space left"), atomic_path(tmp_path / "clip.mp4"):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_training_stage_checkpoint_that_would_run_code_is_refused(tmp_path):
    """The prior's and the motion adapter's training resume from ``<stage>.ckpt`` in their work folder the same way."""
    from dreamlift.training.staged import StagedTrainer

    marker = tmp_path / MARKER_NAME
    torch.save({"step": 1, "model": RunsCode(marker)}, tmp_path / "fit.ckpt")
    model = torch.nn.Linear(2, 1)
    trainer = StagedTrainer(tmp_path, seed=0, checkpoint_every=1)
    with pytest.raises(UsageError, match="would run code when loaded"):
        trainer.train_loop("fit", {"model": model}, torch.optim.SGD(model.parameters(), lr=0.1), 2, None)
    assert not marker.exists()


def test_a_lock_file_that_links_elsewhere_is_refused_and_its_target_untouched(run, tmp_path, capsys):
    """A run folder from elsewhere whose lock file points at a file of yours: it is never opened, let alone
    truncated and written."""
    yours = tmp_path / "yours.txt"
    yours.write_text("keep me")
    (run / LOCK_FILE).unlink()
    (run / LOCK_FILE).symlink_to(yours)
    assert text3d_main(["export", str(run)]) == 2
    assert f"cannot write {run / LOCK_FILE}" in error_line(capsys)
    assert yours.read_text() == "keep me"
