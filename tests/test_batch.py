"""Batch generation: manifests, job ids, skip-if-done, markers, retries, and the local, Slurm and Ray backends."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from conftest import FAST_TEXT3D
from PIL import Image

from dreamlift.batch.jobs import JobRunner, shrink_for_memory
from dreamlift.batch.manifest import job_id, parse_manifest
from dreamlift.batch.status import MARKER, history, is_done, read_status
from dreamlift.cli import text2video_main, text3d_main

FAST = [*FAST_TEXT3D, "export.turntable_frames=0", "device=cpu"]  # later overrides win: no turntable


def fast(prior_dir, steps=4, checkpoint_every=2) -> list[str]:
    return [*FAST, f"prior.model={prior_dir}", f"train.steps={steps}", f"train.checkpoint_every={checkpoint_every}"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def text3d_process(argv: list[str]) -> subprocess.Popen:
    """``text3d ARGV`` in a process of its own session, which a test may kill (alone, or with its group) or
    interrupt: its SIGINT is Python's Ctrl-C even where pytest runs in a background job, whose children inherit
    SIGINT ignored."""
    main = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from dreamlift.cli import text3d_main; sys.exit(text3d_main(sys.argv[1:]))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", main, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def done_records(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in read_status(out):
        if record["outcome"] == "done":
            counts[record["id"]] = counts.get(record["id"], 0) + 1
    return counts


def test_manifest_lines_become_jobs_and_bad_lines_are_named(tmp_path):
    manifest = write(
        tmp_path / "m.txt",
        "# comment\n\na red cube\n"
        '{"prompt": "a blue sphere", "seed": 3, "steps": 7, "train.resolution": 32}\n'
        '{"prompt": "a cone", "train.stepz": 4}\n'
        '{"prompt": ""}\n'
        "{not json\n"
        "a red cube\n",
    )
    jobs, errors = parse_manifest("text3d", manifest, overrides=["train.steps=5"])
    assert [job.line for job in jobs] == [3, 4]  # line 9 repeats line 3: same id, run once
    assert jobs[0].config["train"]["steps"] == 5 and jobs[0].config["guidance"]["kind"] == "sds"
    assert (
        jobs[1].config["seed"] == 3
        and jobs[1].config["train"]["steps"] == 7
        and jobs[1].config["train"]["resolution"] == 32
    )
    assert [(e.line, e.message.split(" (")[0]) for e in errors] == [
        (5, "unknown config key 'train.stepz'"),
        (6, "the prompt is missing or empty"),
        (7, "not valid JSON"),
    ]
    video_jobs, _ = parse_manifest(
        "text2video", write(tmp_path / "v.jsonl", '{"prompt": "a red cube moving left", "steps": 3}\n')
    )
    assert video_jobs[0].config["steps"] == 3 and video_jobs[0].config["frames"] == 8


def test_a_line_with_an_image_in_the_manifests_folder_is_an_image_to_3d_job_and_others_are_refused(tmp_path):
    pictures = tmp_path / "batch" / "pictures"
    pictures.mkdir(parents=True)
    picture = np.full((16, 16, 3), 235, np.uint8)
    picture[4:12, 4:12] = (200, 20, 20)
    Image.fromarray(picture).save(pictures / "cube.png")
    Image.fromarray(picture).save(tmp_path / "outside.png")
    (pictures / "notes.png").write_text("not a picture")
    manifest = write(
        tmp_path / "batch" / "m.jsonl",
        '{"image": "pictures/cube.png"}\n'
        '{"image": "pictures/cube.png", "prompt": "a red cube"}\n'
        '{"image": "../outside.png"}\n'
        f'{{"image": "{tmp_path / "outside.png"}"}}\n'
        '{"image": "pictures/notes.png"}\n'
        f'{{"prompt": "a red cube", "reference.image": "{tmp_path / "outside.png"}"}}\n',
    )
    jobs, errors = parse_manifest("text3d", manifest)
    assert [(job.prompt, job.config["reference"]["image"]) for job in jobs] == [
        ("", str(pictures / "cube.png")),
        ("a red cube", str(pictures / "cube.png")),
    ]
    assert [error.line for error in errors] == [3, 4, 5, 6]
    assert all("must be a picture file in the manifest's folder" in error.message for error in errors[:2])
    assert "is not a picture" in errors[2].message and "'image'" in errors[3].message
    _, video_errors = parse_manifest("text2video", manifest)
    assert "unknown config key 'reference'" in video_errors[0].message


def test_job_ids_are_stable_and_follow_what_changes_the_output(tmp_path):
    def one_id(text, kind="text3d", overrides=()):
        jobs, errors = parse_manifest(kind, write(tmp_path / "m.jsonl", text + "\n"), overrides=list(overrides))
        assert not errors
        return jobs[0].id

    base = one_id('{"prompt": "a red cube"}')
    assert base == one_id('{"prompt": "  a red cube ", "seed": 0}')  # defaults spelled out, prompt stripped
    assert base == one_id('{"prompt": "a red cube", "device": "cuda"}')  # where it runs is not what it makes
    jobs, _ = parse_manifest("text3d", write(tmp_path / "m.txt", "a red cube\n"))
    reordered = dict(reversed(list(jobs[0].config.items())))
    assert job_id("text3d", reordered) == jobs[0].id == base  # text or JSONL, key order: same id
    assert base != one_id('{"prompt": "a red cube", "seed": 1}')
    assert base != one_id('{"prompt": "a red cube"}', overrides=["guidance.scale=50"])
    assert base != one_id('{"prompt": "a red cube", "config": "prolificdreamer"}')
    assert base != one_id('{"prompt": "a red cube"}', kind="text2video")


def test_local_batch_runs_good_lines_skips_finished_jobs_and_reports(tiny_prior_dir, tmp_path, capsys):
    manifest = write(
        tmp_path / "m.txt", 'a red cube\n{"prompt": "a blue sphere", "seed": 3}\n{"prompt": "x", "nope": 1}\n'
    )
    out = tmp_path / "out"
    assert text3d_main(["batch", str(manifest), "--out", str(out), *fast(tiny_prior_dir)]) == 1  # line 3 is bad
    captured = capsys.readouterr()
    assert "manifest line 3: unknown config key 'nope'" in captured.err
    assert "2 jobs: 2 done" in captured.out
    jobs, _ = parse_manifest("text3d", manifest, overrides=fast(tiny_prior_dir))
    for job in jobs:
        folder = out / job.id
        assert json.loads((folder / MARKER).read_text())["prompt"] == job.prompt
        assert len(trimesh.load(folder / "mesh.glb", force="mesh").faces) > 0
        assert "--- attempt 1" in (folder / "log.txt").read_text()
    started = [r for r in read_status(out) if r["outcome"] == "running"]
    assert {r["device"] for r in started} == {"cpu"} and all(r["backend"] == "local" for r in started)

    assert text3d_main(["batch", str(manifest), "--out", str(out), *fast(tiny_prior_dir)]) == 1
    assert "2 already done, 0 to run" in capsys.readouterr().err
    assert done_records(out) == {job.id: 1 for job in jobs}  # nothing ran twice

    assert text3d_main(["batch", str(manifest), "--out", str(out), "--status", *fast(tiny_prior_dir)]) == 1
    table = capsys.readouterr().out
    assert all(job.id in table for job in jobs) and "2 jobs: 2 done" in table


def test_a_job_killed_mid_run_has_no_marker_and_is_redone_from_its_checkpoint(tiny_prior_dir, tmp_path):
    manifest = write(tmp_path / "m.txt", "a red cube\n")
    out = tmp_path / "out"
    settings = fast(tiny_prior_dir, steps=400, checkpoint_every=2)
    job = parse_manifest("text3d", manifest, overrides=settings)[0][0]
    batch = text3d_process(["batch", str(manifest), "--out", str(out), *settings])
    checkpoint = out / job.id / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not checkpoint.is_file() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(batch.pid, signal.SIGKILL)  # the batch and its worker, mid-run
    batch.wait()
    assert checkpoint.is_file() and not is_done(out, job)

    assert text3d_main(["batch", str(manifest), "--out", str(out), *settings]) == 0
    attempts = [r for r in read_status(out) if r["outcome"] == "running"]
    assert [r["resumed"] for r in attempts] == [False, True]
    assert done_records(out) == {job.id: 1}


def test_failures_are_retried_and_out_of_memory_shrinks_the_job(tiny_prior_dir, tmp_path, monkeypatch):
    from dreamlift.text3d.trainer import TextTo3D

    jobs, _ = parse_manifest("text3d", write(tmp_path / "m.txt", "a red cube\n"), overrides=fast(tiny_prior_dir))
    job, out = jobs[0], tmp_path / "out"
    out.mkdir()
    seen, real_run = [], TextTo3D.run

    def flaky_run(self, resume=False, callback=None):
        seen.append(self.config.train.resolution)
        if len(seen) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if len(seen) == 2:
            raise RuntimeError("a transient failure")
        return real_run(self, resume, callback)

    monkeypatch.setattr(TextTo3D, "run", flaky_run)
    record = JobRunner("local").run(job, out, retries=2)
    assert record["outcome"] == "done" and record["attempt"] == 3
    assert seen == [16, 16, 16]  # batch 1 at 16 px cannot shrink further
    assert [r["outcome"] for r in read_status(out)] == [
        "running",
        "out_of_memory",
        "running",
        "failed",
        "running",
        "done",
    ]
    assert history(out, job)["done"] == 1

    config = {"train": {"batch_size": 4, "resolution": 128, "high_resolution": 256}}
    assert shrink_for_memory("text3d", config, 2)["train"] == {
        "batch_size": 1,
        "resolution": 128,
        "high_resolution": 256,
    }
    assert shrink_for_memory("text3d", config, 3)["train"] == {
        "batch_size": 1,
        "resolution": 64,
        "high_resolution": 128,
    }
    assert shrink_for_memory("text2video", {"decode_chunk": 16}, 2) == {"decode_chunk": 4}


def test_a_job_that_keeps_failing_stops_after_its_retries_and_usage_errors_are_not_retried(tiny_prior_dir, tmp_path):
    manifest = write(tmp_path / "m.jsonl", '{"prompt": "a red cube", "prior.model": "/no/such/model"}\n')
    out = tmp_path / "out"
    assert text3d_main(["batch", str(manifest), "--out", str(out), "--retries", "3", *FAST]) == 1
    assert [r["outcome"] for r in read_status(out)] == ["running", "refused"]
    assert "model folder not found" in read_status(out)[-1]["error"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.txt"], "manifest not found"),
        (["EMPTY"], "no runnable jobs"),
        (["GOOD", "train.stepz=3"], "unknown config key 'train.stepz'"),
        (["GOOD", "--retries", "-1"], "--retries"),
        (["GOOD", "--backend", "pbs"], "invalid choice"),
    ],
)
def test_bad_batch_commands_are_one_line_errors(tmp_path, capsys, args, message):
    files = {
        "EMPTY": write(tmp_path / "empty.txt", "# nothing\n"),
        "GOOD": write(tmp_path / "good.txt", "a red cube\n"),
    }
    args = [str(files.get(a, a)) for a in args]
    assert text3d_main(["batch", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_text2video_batch_writes_each_video_once(tiny_prior_dir, tmp_path, capsys):
    manifest = write(tmp_path / "v.txt", "a red cube moving left\na blue sphere growing\n")
    settings = [f"prior.model={tiny_prior_dir}", "steps=2", "frames=3", "mode=zero-shot", "device=cpu"]
    args = ["batch", str(manifest), "--out", str(tmp_path / "out"), *settings]
    assert text2video_main(args) == 0
    jobs, _ = parse_manifest("text2video", manifest, overrides=settings)
    assert all((tmp_path / "out" / job.id / "video.mp4").is_file() and is_done(tmp_path / "out", job) for job in jobs)
    assert "2 jobs: 2 done" in capsys.readouterr().out


def test_a_refused_vsd_job_leaves_the_cached_prior_plain_and_later_vsd_jobs_run(tiny_prior_dir, tmp_path):
    from dreamlift.config import from_dict
    from dreamlift.text3d.config import Text3DConfig

    out, runner = tmp_path / "out", JobRunner("local")
    out.mkdir()
    vsd = [*fast(tiny_prior_dir, steps=2), "guidance.kind=vsd", "guidance.scale=7.5"]
    # The refine stage refuses before its first step: the NeRF has no surface at an absurd threshold.
    (refused,), _ = parse_manifest(
        "text3d",
        write(tmp_path / "a.txt", "a red cube\n"),
        overrides=[*vsd, "refine.enabled=true", "refine.threshold=1e9"],
    )
    record = runner.run(refused, out, retries=2)
    assert record["outcome"] == "refused" and "no surface" in record["error"]
    unet = runner.models.prior(from_dict(Text3DConfig, refused.config).prior, torch.device("cpu")).unet
    assert not any("lora" in name for name, _ in unet.named_parameters())
    assert not getattr(unet, "peft_config", {}) and not unet.time_embedding._forward_hooks
    jobs, _ = parse_manifest("text3d", write(tmp_path / "b.txt", "a red cube\na blue sphere\n"), overrides=vsd)
    assert [runner.run(job, out, retries=0)["outcome"] for job in jobs] == ["done", "done"]


def test_a_bad_window_gets_the_same_verdict_from_text2video_and_from_a_batch(
    tiny_prior, tiny_prior_dir, tmp_path, capsys
):
    from dreamlift.video.temporal import TemporalAdapter

    TemporalAdapter.for_unet(tiny_prior.unet, text_attention=False, num_attention_heads=1).save_pretrained(
        tmp_path / "adapter"
    )
    settings = [
        f"prior.model={tiny_prior_dir}",
        f"motion_adapter={tmp_path / 'adapter'}",
        "steps=2",
        "frames=3",
        "window=1000",
        "device=cpu",
    ]
    assert text2video_main(["a red cube", *settings, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "temporal window must lie in" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
    manifest = write(tmp_path / "v.txt", "a red cube\n")
    assert text2video_main(["batch", str(manifest), "--out", str(tmp_path / "out"), "--retries", "2", *settings]) == 1
    records = read_status(tmp_path / "out")
    assert [r["outcome"] for r in records] == ["running", "refused"]
    assert "temporal window must lie in" in records[-1]["error"]


def _run_batch_in_thread(argv: list[str]) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(text3d_main(argv)), daemon=True)
    thread.start()
    return thread, codes


def _wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _running_record(out: Path, job) -> dict | None:
    """The job's latest 'running' record once it has written a checkpoint in that attempt."""
    if not (out / job.id / "checkpoints" / "last.pt").is_file():
        return None
    started = [r for r in read_status(out) if r["id"] == job.id and r["outcome"] == "running"]
    return started[-1] if started else None


def _assert_every_job_done_once_and_one_resumed(out: Path, jobs, victim):
    assert done_records(out) == {job.id: 1 for job in jobs}
    attempts = [r for r in read_status(out) if r["id"] == victim.id and r["outcome"] == "running"]
    assert len(attempts) == 2 and attempts[-1]["resumed"]
    assert all(is_done(out, job) for job in jobs)


needs_slurm = pytest.mark.skipif(
    shutil.which("sbatch") is None, reason="no Slurm here (.ci/run starts ../shared/slurm-localhost.sh)"
)
SLURM = ["--backend", "slurm", "--gpus-per-task", "0", "--cpus-per-task", "1", "--time-min", "10"]
"""A batch's Slurm options on the one-node test cluster: CPU tasks of one core."""


@needs_slurm
def test_slurm_array_runs_every_job_once_and_a_preempted_task_requeues_and_resumes(tiny_prior_dir, tmp_path):
    pytest.importorskip("submitit")
    manifest = write(tmp_path / "m.txt", "a red cube\na blue sphere\n")
    out = tmp_path / "out"
    settings = fast(tiny_prior_dir, steps=60, checkpoint_every=2)
    jobs, _ = parse_manifest("text3d", manifest, overrides=settings)
    argv = ["batch", str(manifest), "--out", str(out), *SLURM, *settings]
    thread, codes = _run_batch_in_thread(argv)
    victim = jobs[1]
    record = _wait_for(lambda: _running_record(out, victim), 180, "the Slurm task to checkpoint")
    subprocess.run(["scancel", "--signal=USR2", record["slurm_job"]], check=True)  # what Slurm sends before preempting
    # Slurm holds a requeued job for a while (BeginTime) so that the killed run's credential expires; release it
    # sooner so the test stays short, but not within the second of the requeue: slurmd refuses a launch whose
    # credential dates from the second it revoked the old one ("Job credential revoked"), and the task dies.
    task = record["slurm_job"]
    squeue = ["squeue", "-h", "-j", task, "-o", "%t %r"]
    _wait_for(
        lambda: subprocess.run(squeue, capture_output=True, text=True).stdout.strip() == "PD BeginTime",
        60,
        "the requeue",
    )
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now"], check=True)
    thread.join(timeout=300)
    assert codes == [0]
    _assert_every_job_done_once_and_one_resumed(out, jobs, victim)


def test_ray_actors_run_every_job_once_and_a_killed_actor_is_replaced_and_the_job_resumes(tiny_prior_dir, tmp_path):
    ray = pytest.importorskip("ray")
    manifest = write(tmp_path / "m.txt", "a red cube\na blue sphere\n")
    out = tmp_path / "out"
    settings = fast(tiny_prior_dir, steps=60, checkpoint_every=2)
    jobs, _ = parse_manifest("text3d", manifest, overrides=settings)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        thread, codes = _run_batch_in_thread(
            ["batch", str(manifest), "--out", str(out), "--backend", "ray", "--workers", "2", *settings]
        )
        victim = jobs[0]
        record = _wait_for(lambda: _running_record(out, victim), 180, "the Ray actor to checkpoint")
        os.kill(record["pid"], signal.SIGKILL)  # the actor's process dies mid-job
        thread.join(timeout=300)
    finally:
        ray.shutdown()
    assert codes == [0]
    _assert_every_job_done_once_and_one_resumed(out, jobs, victim)
    assert "lost" in {r["outcome"] for r in read_status(out) if r["id"] == victim.id}


@needs_slurm
def test_a_cancelled_slurm_task_fails_its_jobs_instead_of_hanging_the_batch(tiny_prior_dir, tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    import dreamlift.batch.slurm

    monkeypatch.setattr(dreamlift.batch.slurm, "RESULT_GRACE_S", 1.0)
    manifest = write(tmp_path / "m.txt", "a red cube\n")
    out = tmp_path / "out"
    settings = fast(tiny_prior_dir, steps=2000, checkpoint_every=2)
    slurm = ["--backend", "slurm", "--gpus-per-task", "0", "--cpus-per-task", "1", "--retries", "0"]
    thread, codes = _run_batch_in_thread(["batch", str(manifest), "--out", str(out), *slurm, *settings])
    job = parse_manifest("text3d", manifest, overrides=settings)[0][0]
    record = _wait_for(lambda: _running_record(out, job), 180, "the Slurm task to checkpoint")
    subprocess.run(
        ["scancel", "--signal=KILL", "--full", record["slurm_job"]], check=True
    )  # no result file, no requeue
    thread.join(timeout=120)
    assert codes == [1]
    assert (
        read_status(out)[-1]["outcome"] == "failed"
        and "left the queue without a result" in read_status(out)[-1]["error"]
    )
    assert not is_done(out, job)


# --- a manifest is untrusted input: its configs come from its own folder ----------------------------------------
def test_a_manifest_line_reads_configs_only_from_the_manifest_s_folder(tmp_path, monkeypatch):
    batch, elsewhere = tmp_path / "batch", tmp_path / "elsewhere"
    (batch / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    secret = elsewhere / "secret.yaml"
    secret.write_text("private_token_123: 1\n")
    write(batch / "fast.yaml", "train:\n  steps: 3\n")
    write(batch / "sub" / "deeper.yaml", "base: ../fast.yaml\nseed: 4\n")
    write(batch / "escapes.yaml", "base: ../elsewhere/secret.yaml\n")
    write(batch / "absolute.yaml", f"base: {secret}\n")
    (batch / "link.yaml").symlink_to(secret)
    lines = [
        {"prompt": "a red cube", "config": "fast.yaml"},  # 1: beside the manifest
        {"prompt": "a red cube", "config": "sub/deeper.yaml"},  # 2: below it, its base one folder up
        {"prompt": "a red cube", "config": "prolificdreamer"},  # 3: a shipped preset
        {"prompt": "a red cube", "config": str(secret)},  # 4: absolute
        {"prompt": "a red cube", "config": "../elsewhere/secret.yaml"},  # 5: '..' out of the folder
        {"prompt": "a red cube", "config": "link.yaml"},  # 6: a symlink out of it
        {"prompt": "a red cube", "config": "escapes.yaml"},  # 7: a base out of it
        {"prompt": "a red cube", "config": "absolute.yaml"},  # 8: an absolute base
        {"prompt": "a red cube", "config": "secret.yaml"},  # 9: not in the manifest's folder (only in the working one)
        {"prompt": "a red cube", "config": "nope"},  # 10: no such preset
        {"prompt": "a red cube", "config": 5},  # 11: not a name
    ]
    manifest = write(batch / "m.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    monkeypatch.chdir(elsewhere)
    jobs, errors = parse_manifest("text3d", manifest)
    assert [job.line for job in jobs] == [1, 2, 3]
    assert jobs[0].config["train"]["steps"] == 3 and (jobs[1].config["seed"], jobs[1].config["train"]["steps"]) == (
        4,
        3,
    )
    assert jobs[2].config["guidance"]["kind"] == "vsd"
    assert [error.line for error in errors] == [4, 5, 6, 7, 8, 9, 10, 11]
    assert all("private_token_123" not in str(error) for error in errors)
    assert str(errors[0]).startswith(f"manifest line 4: config '{secret}' must be a preset name (")
    assert all(
        error.message.endswith("must be a preset name or a YAML file in " + str(batch.resolve()))
        for error in errors[3:5]
    )
    assert errors[5].message == f"config file not found: {batch.resolve() / 'secret.yaml'}"
    assert "config 'nope' must be a preset name" in errors[6].message
    assert "config 5 must be a preset name" in errors[7].message


def test_a_video_manifest_names_the_video_presets(tmp_path):
    lines = [{"prompt": "a corgi", "config": "animatediff-sd"}, {"prompt": "a corgi", "config": "dreamfusion"}]
    manifest = write(tmp_path / "m.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    jobs, errors = parse_manifest("text2video", manifest)
    assert [job.config["frames"] for job in jobs] == [16]
    assert [error.line for error in errors] == [2] and "(animatediff-sd)" in errors[0].message


def test_the_batch_wide_config_may_be_any_path_and_a_refused_line_prints_no_file(tmp_path, capsys):
    trusted, secret = write(tmp_path / "trusted.yaml", "train:\n  steps: 6\n"), tmp_path / "secret.yaml"
    secret.write_text("private_token_123: 1\n")
    (tmp_path / "batch").mkdir()
    manifest = write(tmp_path / "batch" / "m.jsonl", '{"prompt": "a red cube"}\n')
    jobs, errors = parse_manifest("text3d", manifest, preset=str(trusted))
    assert not errors and jobs[0].config["train"]["steps"] == 6
    write(manifest, json.dumps({"prompt": "a red cube", "config": str(secret)}) + "\n")
    out = tmp_path / "out"
    assert text3d_main(["batch", str(manifest), "--out", str(out), "--config", str(trusted)]) == 2
    err = capsys.readouterr().err
    assert f"manifest line 1: config '{secret}' must be a preset name" in err and "private_token_123" not in err
    assert not out.exists()


def test_a_manifest_that_is_not_utf8_is_one_line_exit_2(tmp_path, capsys):
    manifest = tmp_path / "m.txt"
    manifest.write_bytes(b"a red cube\n\xff\xfe a blue sphere\n")
    out = tmp_path / "out"
    assert text3d_main(["batch", str(manifest), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"text3d batch: error: manifest {manifest} is not UTF-8 text (byte 11); save it as UTF-8"]
    assert not out.exists()


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie that nothing reaps counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_a_killed_batch_takes_its_worker_with_it_and_the_rerun_runs_each_job_once(tiny_prior_dir, tmp_path):
    manifest = write(tmp_path / "m.txt", "a red cube\na blue sphere\na green cone\n")
    out = tmp_path / "out"
    settings = fast(tiny_prior_dir, steps=8, checkpoint_every=2)
    jobs = parse_manifest("text3d", manifest, overrides=settings)[0]
    batch = text3d_process(["batch", str(manifest), "--out", str(out), *settings])
    second = out / jobs[1].id / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not second.is_file() and time.time() < deadline:
        time.sleep(0.05)
    batch.send_signal(signal.SIGKILL)  # the batch alone: its worker is not told
    batch.wait()
    killed_at = time.time()
    worker = next(r["pid"] for r in read_status(out) if r["outcome"] == "running")
    while not process_gone(worker) and time.time() < killed_at + 5:
        time.sleep(0.05)
    assert process_gone(worker)
    assert not [r for r in read_status(out) if r["pid"] == worker and r["time"] > killed_at + 1]

    assert text3d_main(["batch", str(manifest), "--out", str(out), *settings]) == 0
    assert done_records(out) == {job.id: 1 for job in jobs}


def test_a_second_batch_on_the_same_folder_is_refused_while_the_first_lives(tiny_prior_dir, tmp_path, capsys):
    from dreamlift.locks import writer_lock

    manifest = write(tmp_path / "m.txt", "a red cube\n")
    out = tmp_path / "out"
    out.mkdir()
    with writer_lock(out):  # as a running batch holds it
        assert text3d_main(["batch", str(manifest), "--out", str(out), *fast(tiny_prior_dir)]) == 2
    assert f"{out} is being written by pid {os.getpid()}" in capsys.readouterr().err
    assert not (out / "status.jsonl").exists()


def test_a_job_whose_checkpoint_would_run_code_is_refused_and_runs_none(tiny_prior_dir, tmp_path):
    manifest = write(tmp_path / "m.txt", "a red cube\n")
    out = tmp_path / "out"
    settings = fast(tiny_prior_dir)
    job = parse_manifest("text3d", manifest, overrides=settings)[0][0]
    (out / job.id / "checkpoints").mkdir(parents=True)
    marker = tmp_path / "code-ran"

    class RunsCode:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"step": 2, "stage": "nerf", "metrics": {"loss": [], "train_seconds": 0.0, "x": RunsCode()}},
               out / job.id / "checkpoints" / "last.pt")  # fmt: skip
    assert text3d_main(["batch", str(manifest), "--out", str(out), *settings]) == 1
    record = read_status(out)[-1]
    assert record["outcome"] == "refused" and "would run code when loaded" in record["error"]
    assert not marker.exists() and not is_done(out, job)


@needs_slurm
def test_a_slurm_batch_stopped_with_ctrl_c_cancels_its_array(tiny_prior_dir, tmp_path):
    pytest.importorskip("submitit")
    manifest = write(tmp_path / "m.txt", "a red cube\n")
    out = tmp_path / "out"
    settings = fast(tiny_prior_dir, steps=5000, checkpoint_every=2)  # runs far longer than the test
    job = parse_manifest("text3d", manifest, overrides=settings)[0][0]
    batch = text3d_process(["batch", str(manifest), "--out", str(out), *SLURM, *settings])
    task = _wait_for(lambda: _running_record(out, job), 180, "the Slurm task to checkpoint")["slurm_job"]
    state = ["squeue", "-h", "-j", task, "-o", "%t"]
    try:
        assert subprocess.run(state, capture_output=True, text=True).stdout.strip() == "R"
        batch.send_signal(signal.SIGINT)
        assert batch.wait(timeout=60) == 130
        # Cancelled: completing (CG) while Slurm ends its processes, then gone; never running on by itself.
        _wait_for(lambda: subprocess.run(state, capture_output=True, text=True).stdout.strip() in ("CG", ""), 10, "it")
        assert (out / "slurm" / "array").read_text() == task
    finally:
        subprocess.run(["scancel", "--signal=KILL", task], capture_output=True)


def test_a_status_file_that_links_elsewhere_is_refused_and_its_target_untouched(tiny_prior_dir, tmp_path, capsys):
    manifest = write(tmp_path / "m.txt", "a red cube\n")
    out = tmp_path / "out"
    out.mkdir()
    yours = tmp_path / "yours.txt"
    yours.write_text("keep me\n")
    (out / "status.jsonl").symlink_to(yours)
    assert text3d_main(["batch", str(manifest), "--out", str(out), *fast(tiny_prior_dir)]) == 2
    assert f"cannot write {out / 'status.jsonl'}" in capsys.readouterr().err
    assert yours.read_text() == "keep me\n"
