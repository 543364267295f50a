"""The refine stage end to end on a tiny prior: the magic3d preset in one command, `text3d refine`, re-export."""

import json

import imageio.v3 as imageio
import trimesh
from conftest import FAST_REFINE, FAST_TEXT3D

from dreamlift.cli import text3d_main


def assert_textured_stage(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["stage"] == "refine" and metrics["export"]["textured"]
    loaded = trimesh.load(folder / "mesh.glb", force="mesh")
    assert (
        isinstance(loaded.visual, trimesh.visual.TextureVisuals) and len(loaded.faces) == metrics["export"]["faces"] > 0
    )
    assert (folder / "texture.png").is_file() and (folder / "mesh.mtl").is_file()
    assert not list(folder.glob(".*tmp*"))
    return metrics


def test_magic3d_preset_runs_both_stages_in_one_command(tmp_path, tiny_prior_dir, capsys):
    out = tmp_path / "run"
    args = ["a green cone", "--config", "magic3d", "--model", str(tiny_prior_dir), "--steps", "2", "--out", str(out)]
    assert text3d_main([*args, *FAST_TEXT3D, *FAST_REFINE]) == 0
    assert (out / "mesh.glb").is_file() and (out / "checkpoints" / "last.pt").is_file()  # stage 1 kept
    metrics = assert_textured_stage(out / "refine")
    assert metrics["initial_sdf"][0]["threshold"] > 0
    assert "refine/mesh.{glb,obj,ply}" in capsys.readouterr().err
    # Resuming a finished run redoes nothing.
    before = (out / "refine" / "mesh.glb").stat().st_mtime_ns
    assert text3d_main(["--resume", "--out", str(out)]) == 0
    assert (out / "refine" / "mesh.glb").stat().st_mtime_ns == before


def test_refine_an_existing_nerf_run_then_export_it_again(tmp_path, tiny_prior_dir, capsys):
    out = tmp_path / "run"
    args = ["a red cube", "--model", str(tiny_prior_dir), "--steps", "2", "--out", str(out), *FAST_TEXT3D]
    assert text3d_main(args) == 0
    assert text3d_main(["refine", str(out), *FAST_REFINE]) == 0
    assert_textured_stage(out / "refine")
    capsys.readouterr()
    assert text3d_main(["refine", str(out), *FAST_REFINE]) == 2
    assert "already holds a refine stage" in capsys.readouterr().err
    assert text3d_main(["export", str(out / "refine"), "export.texture_resolution=64"]) == 0
    assert "textured" in capsys.readouterr().err
    assert imageio.imread(out / "refine" / "texture.png").shape == (64, 64, 3)
    # A NeRF export can be textured too.
    assert text3d_main(["export", str(out), "export.textured=true", "export.texture_resolution=32"]) == 0
    assert isinstance(trimesh.load(out / "mesh.glb", force="mesh").visual, trimesh.visual.TextureVisuals)


def test_refine_bad_input_is_one_line(tmp_path, capsys):
    assert text3d_main(["refine", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"text3d refine: error: run folder not found: {tmp_path / 'missing'}"
    assert text3d_main(["refine", str(tmp_path)]) == 2
    assert "is not a text3d run folder" in capsys.readouterr().err
