import json
import subprocess
import sys

import numpy as np
import pytest
import trimesh
import yaml
from conftest import FAST_TEXT3D

from dreamlift.cli import text2video_main, text3d_main
from dreamlift.io import slugify


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["", "--steps", "1"], "the prompt is empty"),
        (["   "], "the prompt is empty"),
        (["a red cube", "guidance.scael=3"], "unknown config key 'guidance.scael'"),
        (["a red cube", "--config", "nope"], "unknown config preset 'nope'"),
        (["a red cube", "--steps", "0"], "steps must be > 0"),
        (["a red cube", "--steps", "-5"], "steps must be > 0"),
        (["a red cube", "--steps", "many"], "invalid int value"),
        (["a red cube", "guidance.scale=-1"], "scale must be >= 0"),
        (["a red cube", "regularisers.pixel_target=-1"], "regulariser weights must be >= 0"),
        (["a red cube", "--model", "/no/such/folder"], "model folder not found"),
        (["a red cube", "--bogus-flag"], "unrecognized arguments"),
        (["a red cube", "--config", "dreamgaussian", "gaussians.model.count=0"], "count must be >= 1"),
        (["a red cube", "--config", "dreamgaussian", "gaussians.model.count=-3"], "count must be >= 1"),
        (["a red cube", "--config", "dreamgaussian", "gaussians.model.densify_every=0"], "densify_every must be >= 1"),
        (["a red cube", "--config", "dreamgaussian", "gaussians.splatting.backend=gsplat"], "gsplat needs CUDA"),
        (["a red cube", "--config", "dreamgaussian", "export.redraw.strength=1.5"], "strength must lie in [0, 1]"),
        (["a red cube", "export.redraw.steps=0"], "redraw.steps must be >= 1"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert text3d_main([*args, "--out", str(out)]) == 2
    line = error_line(capsys)
    assert line.startswith("text3d: error:") and message in line
    assert not out.exists() and not (tmp_path / "outputs").exists()


def test_unwritable_out(tmp_path, capsys, tiny_prior_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert text3d_main(["a red cube", "--model", str(tiny_prior_dir), "--out", str(blocker / "run"), *FAST_TEXT3D]) == 2
    assert "cannot write to output folder" in error_line(capsys)


def test_run_export_and_resume_guard(tmp_path, capsys, tiny_prior_dir):
    out = tmp_path / "run"
    args = [
        "a red cube",
        "--model",
        str(tiny_prior_dir),
        "--steps",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
        *FAST_TEXT3D,
    ]
    assert text3d_main(args) == 0
    assert json.loads((out / "metrics.json").read_text())["seed"] == 3
    assert len(trimesh.load(out / "mesh.obj", force="mesh").faces) > 0
    capsys.readouterr()
    # The same folder again without --resume is refused; with --resume and more steps it continues.
    assert text3d_main(args) == 2
    assert "already holds a run" in error_line(capsys)
    assert text3d_main(["--resume", "--out", str(out), "--steps", "3"]) == 0
    assert json.loads((out / "metrics.json").read_text())["loss"][-1][0] == 3
    capsys.readouterr()
    assert text3d_main(["other prompt", "--resume", "--out", str(out)]) == 2
    assert 'is a run of "a red cube"' in error_line(capsys)
    (out / "mesh.glb").unlink()
    assert text3d_main(["export", str(out), "export.formats=[glb]"]) == 0
    assert (out / "mesh.glb").is_file()
    # The preset's redrawing of a NeRF's colours by the prior, which FAST_TEXT3D turns off, changes them.
    albedo = trimesh.load(out / "mesh.ply").visual.vertex_colors
    assert text3d_main(["export", str(out), "export.redraw.strength=0.6", "export.redraw.size=16"]) == 0
    assert not np.array_equal(trimesh.load(out / "mesh.ply").visual.vertex_colors, albedo)
    capsys.readouterr()
    assert text3d_main(["export", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in error_line(capsys)


def test_text2video_without_a_prompt_is_a_usage_error(capsys):
    assert text2video_main([]) == 2
    assert "required: prompt" in error_line(capsys)


def test_console_script_exit_code(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from dreamlift.cli import text3d_main; sys.exit(text3d_main())", ""],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == 'text3d: error: the prompt is empty; say what to make, e.g. text3d "a red cube"'


def test_slugify():
    assert slugify("A red cube!") == "a-red-cube"
    assert slugify("???") == "run"


def test_a_config_that_is_not_utf8_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe seed: 1")
    assert text3d_main(["a cube", "--config", "bad.yaml", "--out", str(tmp_path / "run")]) == 2
    assert "config file bad.yaml is not UTF-8 text" in error_line(capsys)
    assert not (tmp_path / "run").exists() and not (tmp_path / "outputs").exists()
    run = tmp_path / "old-run"
    run.mkdir()
    (run / "config.yaml").write_bytes(b"\xff\xfe seed: 1")
    for argv in (["export", str(run)], ["--resume", "--out", str(run)]):
        assert text3d_main(argv) == 2
        line = error_line(capsys)
        assert line.startswith("text3d") and "config.yaml is not UTF-8 text" in line
        assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", str(2**32)])
def test_a_seed_out_of_range_is_one_line_exit_2_and_writes_nothing(seed, tiny_prior_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["a cube", "--seed", seed, "--model", str(tiny_prior_dir), "--out", str(out), *FAST_TEXT3D]
    assert text3d_main(argv) == 2
    assert f"seed must be a whole number between 0 and {2**32 - 1} (got {seed})" in error_line(capsys)
    assert not out.exists()
    png = tmp_path / "samples.png"
    argv = ["sample-prior", "a cube", "--seed", seed, "--model", str(tiny_prior_dir), "--steps", "1", "--out", str(png)]
    assert text3d_main(argv) == 2
    assert f"seed must be a whole number between 0 and {2**32 - 1} (got {seed})" in error_line(capsys)
    assert not png.exists()


def test_version_subcommands_presets_and_the_make_alias(capsys):
    assert text3d_main(["--version"]) == 0 and capsys.readouterr().out.startswith("text3d 0.")
    assert text2video_main(["-V"]) == 0 and capsys.readouterr().out.startswith("text2video 0.")
    with pytest.raises(SystemExit):
        text3d_main(["--help"])
    help_text = capsys.readouterr().out
    for name in ("export", "refine", "config", "report", "batch", "sample-prior", "train-prior"):
        assert f"text3d {name} " in help_text
    for preset in ("dreamfusion", "dreamgaussian", "magic3d", "prolificdreamer", "esd", "sjc"):
        assert f"\n  {preset} " in help_text
    with pytest.raises(SystemExit):
        text2video_main(["--help"])
    help_text = capsys.readouterr().out
    assert "text2video train " in help_text and "\n  animatediff-sd " in help_text
    assert "\n  dreamfusion " not in help_text  # text3d's presets are not text2video's
    assert text3d_main(["make", "  "]) == 2  # `make` is the default command, named
    assert "the prompt is empty" in capsys.readouterr().err


def test_config_prints_the_resolved_config_and_refuses_bad_keys(capsys):
    assert text3d_main(["config", "a corgi", "--config", "dreamgaussian", "train.steps=5"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["prompt"] == "a corgi" and printed["scene"] == "gaussians" and printed["train"]["steps"] == 5
    assert text3d_main(["config", "train.stepz=5"]) == 2
    assert "unknown config key 'train.stepz'" in capsys.readouterr().err


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom dreamlift.cli import text3d_main, text2video_main\n"
        "for main, argv in ((text3d_main, ['--help']), (text3d_main, ['batch', '--help']),"
        " (text3d_main, ['report', '--help']), (text2video_main, ['--help'])):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip() == "False"
