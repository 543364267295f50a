"""HTML reports: what the pages hold and link, atomic refresh, bad input, and (where Chromium exists) the pages in a
real headless browser: the viewer loads the GLB and draws it, nothing is logged as an error, the filter works."""

import base64
import json
import re
import shutil
import webbrowser
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import FAST_REFINE, FAST_TEXT3D, VIEWER_TIMEOUT_S, errors_logged

from dreamlift.batch.status import read_status
from dreamlift.cli import text2video_main, text3d_main
from dreamlift.locks import LOCK_FILE
from dreamlift.report import write_report


@pytest.fixture(scope="module")
def run_dir(tiny_prior_dir, tmp_path_factory):
    """A magic3d run: a NeRF stage with a vertex-coloured mesh, and a refine stage with a textured one."""
    out = tmp_path_factory.mktemp("report") / "run"
    args = ["a red cube", "--config", "magic3d", "--model", str(tiny_prior_dir), "--out", str(out), "--steps", "4"]
    extra = ["train.validate_every=2", "export.turntable_resolution=64", "redraw_fit.rounds=1"]
    extra += ["redraw_fit.redraw.size=16", "redraw_fit.redraw.steps=2"]
    assert text3d_main([*args, *FAST_TEXT3D, *FAST_REFINE, *extra]) == 0
    return out


def batch_overrides(prior_dir: Path) -> list[str]:
    return [*FAST_TEXT3D, "device=cpu", f"prior.model={prior_dir}", "train.steps=2"]


@pytest.fixture(scope="module")
def batch_dir(tiny_prior_dir, tmp_path_factory):
    """A batch of two finished jobs and one refused (its model folder is missing)."""
    root = tmp_path_factory.mktemp("batch")
    manifest = root / "m.jsonl"
    manifest.write_text(
        '{"prompt": "a red cube"}\n{"prompt": "a blue sphere", "seed": 1}\n'
        '{"prompt": "a green cone", "prior.model": "/no/such/model"}\n'
    )
    args = ["batch", str(manifest), "--out", str(root / "out"), *batch_overrides(tiny_prior_dir)]
    assert text3d_main([*args, "--retries", "0"]) == 1
    return root / "out"


def linked_paths(page: Path) -> list[Path]:
    """Every local file a page links (src and href), resolved from the page's folder."""
    links = re.findall(r'(?:src|href)="([^"#:]+)"', page.read_text())
    return [(page.parent / link).resolve() for link in links]


def test_run_report_embeds_the_mesh_and_links_the_runs_files(run_dir):
    index = write_report(run_dir)
    assert index == run_dir / "report" / "index.html"
    html = index.read_text()
    assert html.count("<model-viewer") == 2 and html.count("<svg") == 4 and "guidance schedule" in html
    assert "genus" in html and "Validation views" in html and "Refine stage (DMTet)" in html
    assert "redraw_000001" in html  # redraw-and-fit's one round
    for key, folder in (("stage", run_dir), ("refine", run_dir / "refine")):
        script = (index.parent / f"{key}.glb.js").read_text()
        encoded = re.search(r'= "([A-Za-z0-9+/=]+)";', script).group(1)
        assert base64.b64decode(encoded) == (folder / "mesh.glb").read_bytes()
    links = linked_paths(index)
    assert links and all(path.is_file() for path in links), [p for p in links if not p.is_file()]
    assert (index.parent / "assets" / "LICENSE-model-viewer.txt").is_file()


def test_a_refreshed_report_replaces_the_old_one_whole_and_opens_in_a_browser(run_dir, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda uri: opened.append(uri) or True)
    write_report(run_dir)
    (run_dir / "report" / "stale.txt").write_text("from an older report")
    assert text3d_main(["report", str(run_dir), "--open"]) == 0
    assert opened == [(run_dir / "report" / "index.html").resolve().as_uri()]
    monkeypatch.setattr(webbrowser, "open", lambda uri: False)  # no browser: the address is said instead
    assert text3d_main(["report", str(run_dir), "--open"]) == 0
    assert f"no web browser to open; open {opened[0]}" in capsys.readouterr().err
    assert not (run_dir / "report" / "stale.txt").exists()
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == [LOCK_FILE]  # no staging folder left


def test_batch_report_lists_every_job_with_its_state_and_pages_the_finished(batch_dir):
    index = batch_dir / "report" / "index.html"  # written by the batch when it ended
    html = index.read_text()
    ids = {record["id"]: record for record in read_status(batch_dir)}
    assert len(ids) == 3 and html.count('class="job"') == 3
    assert "3 jobs: 2 done, 1 refused" in html
    for job_id in ids:
        state = "refused" if ids[job_id]["prompt"] == "a green cone" else "done"
        assert f'data-state="{state}" data-prompt="{ids[job_id]["prompt"]}" data-id="{job_id}"' in html
        assert (batch_dir / "report" / "jobs" / job_id / "index.html").is_file() == (state == "done")
    assert "model folder not found" in html
    for page in [index, *(batch_dir / "report" / "jobs").glob("*/index.html")]:
        assert all(path.is_file() for path in linked_paths(page))


def test_status_refreshes_the_batch_report_and_shows_an_errors_first_line(batch_dir, tiny_prior_dir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(batch_dir, out)
    shutil.rmtree(out / "report")
    status = ["batch", str(batch_dir.parent / "m.jsonl"), "--out", str(out), "--status"]
    assert text3d_main([*status, *batch_overrides(tiny_prior_dir)]) == 1
    assert "3 jobs: 2 done, 1 refused" in (out / "report" / "index.html").read_text()
    with open(out / "status.jsonl", "a") as status:
        record = {"id": "f" * 16, "line": 9, "prompt": "a yellow torus", "outcome": "failed", "seconds": 3.0}
        status.write(json.dumps({**record, "error": "RuntimeError: boom\n  at step 3"}) + "\n")
    write_report(out)
    html = (out / "report" / "index.html").read_text()
    assert "4 jobs: 2 done, 1 failed, 1 refused" in html
    assert "RuntimeError: boom" in html and "at step 3" not in html


def test_video_report_plays_each_clip_with_its_gif_and_frames(tiny_prior_dir, tmp_path):
    args = ["a red cube moving right", "--model", str(tiny_prior_dir), "--mode", "zero-shot", "--steps", "2"]
    assert text2video_main([*args, "--frames", "3", "--out", str(tmp_path / "clip"), "save_frames=true"]) == 0
    assert text2video_main(["report", str(tmp_path / "clip")]) == 0
    index = tmp_path / "clip" / "report" / "index.html"
    html = index.read_text()
    assert "video.mp4" in html and "video.gif" in html and html.count('src="../frames/video/') == 3
    assert all(path.is_file() for path in linked_paths(index))


@pytest.mark.parametrize("make", ["nothing", "unrelated", "missing"])
def test_a_folder_with_nothing_to_report_is_one_line_and_writes_nothing(tmp_path, capsys, make):
    folder = tmp_path / "folder"
    if make != "missing":
        folder.mkdir()
    if make == "unrelated":
        (folder / "config.yaml").write_text("prompt: a red cube\n")
    assert text3d_main(["report", str(folder)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("text3d report: error:") and "\n" not in error
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == (
        ["config.yaml"] if make == "unrelated" else []
    )


def test_an_unfinished_runs_prompt_comes_from_its_config_else_its_folder_name(tmp_path):
    from dreamlift.report.run_page import run_prompt

    run = tmp_path / "a-run"
    run.mkdir()
    assert run_prompt(run) == "a-run"  # no config.yaml yet
    (run / "config.yaml").write_text("seed: 0\nprompt: 'a red cube: side view'\n")
    assert run_prompt(run) == "a red cube: side view"
    (run / "config.yaml").write_text("prompt: [unclosed\n")
    assert run_prompt(run) == "a-run"
    (run / "config.yaml").write_text("seed: 0\n")
    assert run_prompt(run) == "a-run"


# --- what a folder holds is data: a tampered status.jsonl or metrics.json is refused in one line, writing nothing ---
def files_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def refused(folder: Path, capsys, root: Path | None = None) -> str:
    """``text3d report folder`` exits 2 with one line and leaves every file under ``root`` (the folder's parent by
    default) as it was: no report, no staging folder, nothing outside; returns the line."""
    root = root or folder.parent
    before = files_under(root)
    assert text3d_main(["report", str(folder)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("text3d report: error:") and "\n" not in error
    assert files_under(root) == before
    return error


def fake_run(folder: Path, metrics: object, config: str = "prompt: a red cube\n") -> Path:
    """A run folder that holds only a config.yaml and ``metrics`` as its metrics.json (a mesh.glb too)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(config)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "mesh.glb").write_bytes(b"glTF")
    return folder


RECORD = {"id": "0123456789abcdef", "line": 1, "prompt": "a red cube", "outcome": "failed"}


def fake_batch(out: Path, *records: object) -> Path:
    out.mkdir(parents=True)
    (out / "status.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    return out


def test_a_job_id_that_climbs_out_of_the_batch_writes_nothing_outside(tmp_path, capsys):
    out = tmp_path / "w1" / "w2" / "w3" / "out"
    escape_id = "../../../../x"
    fake_run((out / escape_id).resolve(), {"stage": "nerf"})  # a run where the id points, for the report to page
    fake_batch(out, RECORD, {**RECORD, "id": escape_id, "line": 2})
    error = refused(out, capsys, tmp_path)
    assert f"status.jsonl line 2: job id '{escape_id}' is not a folder name" in error
    assert not (tmp_path / "w1" / "w2" / "x").exists()


@pytest.mark.parametrize(
    "record, message",
    [
        ({k: v for k, v in RECORD.items() if k != "id"}, "has no field 'id'"),
        ({**RECORD, "id": 7}, "field 'id' must be a string"),
        ({**RECORD, "id": ""}, "job id '' is not a folder name"),
        ({**RECORD, "id": ".."}, "job id '..' is not a folder name"),
        ({**RECORD, "id": "."}, "job id '.' is not a folder name"),
        ({**RECORD, "id": "a/b"}, "job id 'a/b' is not a folder name"),
        ({**RECORD, "id": "a\\b"}, "job id 'a\\\\b' is not a folder name"),
        ({**RECORD, "id": "a\0b"}, "job id 'a\\x00b' is not a folder name"),
        ({**RECORD, "id": "/etc"}, "job id '/etc' is not a folder name"),
        ({**RECORD, "line": "2"}, "field 'line' must be an integer"),
        ({**RECORD, "line": True}, "field 'line' must be an integer"),
        ({k: v for k, v in RECORD.items() if k != "line"}, "has no field 'line'"),
        ({**RECORD, "prompt": 5}, "field 'prompt' must be a string"),
        ({**RECORD, "outcome": None}, "field 'outcome' must be a string"),
        ([RECORD], "not a JSON object"),
        ("a red cube", "not a JSON object"),
    ],
)
def test_a_status_record_of_the_wrong_shape_is_refused_with_its_line(tmp_path, capsys, record, message):
    out = fake_batch(tmp_path / "out", RECORD, record)
    error = refused(out, capsys)
    assert f"{out / 'status.jsonl'} line 2: {message}" in error


def test_undecodable_status_lines_are_skipped_and_odd_seconds_and_errors_shown_as_none(tmp_path):
    out = fake_batch(tmp_path / "out", {**RECORD, "seconds": "fast", "error": ["RuntimeError: boom"]})
    with open(out / "status.jsonl", "ab") as status:
        status.write(b'{"id": "fedcba9876543210", "li\xff\n{"id": "fedcba98')  # torn lines, one not even UTF-8
    assert text3d_main(["report", str(out)]) == 0
    html = (out / "report" / "index.html").read_text()
    assert "1 jobs: 1 failed" in html and "boom" not in html and " s</div>" not in html
    for seconds in (True, 10**400):  # not a number; too large for a float
        (out / "status.jsonl").write_text(json.dumps({**RECORD, "seconds": seconds}) + "\n")
        assert text3d_main(["report", str(out)]) == 0
        assert "attempts · " not in (out / "report" / "index.html").read_text()


def test_a_job_folder_must_be_a_plain_folder_name():
    from dreamlift.batch.status import RecordedJob, job_dir
    from dreamlift.errors import UsageError

    assert job_dir(Path("out"), RecordedJob("0123456789abcdef", 1, "p")) == Path("out/0123456789abcdef")
    for bad in ("..", "../x", "", "a/b", "a\\b", "/abs", "a\0b"):
        with pytest.raises(UsageError, match="is not a folder name"):
            job_dir(Path("out"), RecordedJob(bad, 1, "p"))


@pytest.fixture
def stage_copy(run_dir, tmp_path):
    """A copy of the run's NeRF stage's config.yaml and metrics.json, whose metrics a test may spoil."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("config.yaml", "metrics.json"):
        shutil.copy(run_dir / name, folder / name)
    return folder


@pytest.mark.parametrize(
    "field, value, kind",
    [
        ("export", "faces", "an object"),
        ("export", [1], "an object"),
        ("loss", {"a": 1}, "a list of [step, value] pairs"),
        ("loss", [[1, "a"], [2, 0.5]], "a list of [step, value] pairs"),
        ("loss", [[1]], "a list of [step, value] pairs"),
        ("train_seconds", "fast", "a number"),
        ("seconds_per_step", [0.1], "a number"),
        ("phase_seconds", [1], "an object of numbers"),
        ("phase_seconds", {"render": "slow"}, "an object of numbers"),
        ("prompt", 5, "a string"),
        ("stage", 5, "a string"),
        ("stage", ["nerf"], "a string"),
        ("steps", "x", "an integer"),
        ("steps", 2.5, "an integer"),
        ("steps", 10**400, "an integer"),  # too large for the plot's axis
    ],
)
def test_a_metrics_field_of_the_wrong_type_is_refused_in_one_line(stage_copy, capsys, field, value, kind):
    metrics = json.loads((stage_copy / "metrics.json").read_text())
    (stage_copy / "metrics.json").write_text(json.dumps({**metrics, field: value}))
    error = refused(stage_copy, capsys)
    assert error.endswith(f"{stage_copy / 'metrics.json'}: field '{field}' must be {kind}")


def test_a_mesh_stages_metrics_of_the_wrong_type_refuse_the_report_built_half(stage_copy, run_dir, capsys):
    shutil.copytree(run_dir / "refine", stage_copy / "refine", ignore=shutil.ignore_patterns("report"))
    metrics = json.loads((stage_copy / "refine" / "metrics.json").read_text())
    (stage_copy / "refine" / "metrics.json").write_text(json.dumps({**metrics, "export": "faces"}))
    error = refused(stage_copy, capsys)
    assert error.endswith(f"{stage_copy / 'refine' / 'metrics.json'}: field 'export' must be an object")


@pytest.mark.parametrize("metrics", [[1, 2], "mode stage", 5, None])
def test_metrics_that_are_not_an_object_read_as_none_yet(tmp_path, capsys, metrics):
    run = fake_run(tmp_path / "run", metrics)
    refused(run, capsys)  # a config.yaml alone is not a run
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    assert text3d_main(["report", str(run)]) == 0
    assert "in progress (no metrics.json yet)" in (run / "report" / "index.html").read_text()


def test_a_batch_job_with_metrics_of_the_wrong_type_refuses_the_batchs_report(tmp_path, capsys):
    out = fake_batch(tmp_path / "out", RECORD)
    fake_run(out / RECORD["id"], {"stage": "nerf", "loss": "low"})
    error = refused(out, capsys)
    assert error.endswith(f"{out / RECORD['id'] / 'metrics.json'}: field 'loss' must be a list of [step, value] pairs")


@pytest.mark.parametrize(
    "metrics, error",
    [
        ({"prompt": 5, "mode": "zero-shot"}, "field 'prompt' must be a string"),
        ({"prompt": "a red cube", "mode": ["zero-shot"]}, "field 'mode' must be a string"),
        ({"prompt": "a red cube", "mode": "zero-shot", "seeds": "<b>x</b>", "size": {"a": 1}, "frames": None}, None),
    ],
)
def test_a_video_outputs_metrics_are_checked_and_the_rest_shown_as_text(tmp_path, capsys, metrics, error):
    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / "metrics.json").write_text(json.dumps(metrics))
    if error:
        assert refused(clip, capsys).endswith(f"{clip / 'metrics.json'}: {error}")
    else:
        assert text3d_main(["report", str(clip)]) == 0
        html = (clip / "report" / "index.html").read_text()
        assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x" not in html


# --- in a real browser -----------------------------------------------------------------------------------------
def screenshot(element) -> np.ndarray:
    """The element's pixels (RGB)."""
    return iio.imread(element.screenshot_as_png)[..., :3]


def recoloured_copy(run_dir: Path, folder: Path) -> Path:
    """A copy of the run whose NeRF-stage mesh has red vertex colours and whose refine stage's texture is blue, so a
    screenshot tells whether the viewer shows each kind of colour."""
    import trimesh
    from PIL import Image

    shutil.copytree(run_dir, folder, ignore=shutil.ignore_patterns("report"))
    coloured = trimesh.load(folder / "mesh.glb", force="mesh")
    coloured.visual.vertex_colors = np.tile([220, 30, 30, 255], (len(coloured.vertices), 1))
    coloured.export(folder / "mesh.glb")
    textured = trimesh.load(folder / "refine" / "mesh.glb", force="mesh")
    assert isinstance(textured.visual, trimesh.visual.TextureVisuals)
    textured.visual.material.baseColorTexture = Image.new("RGB", (32, 32), (30, 30, 220))
    textured.export(folder / "refine" / "mesh.glb")
    return folder


def test_the_viewers_load_and_draw_vertex_colours_and_textures_in_a_browser(browser, run_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(write_report(recoloured_copy(run_dir, tmp_path / "run")).resolve().as_uri())
    viewers = browser.find_elements(By.CSS_SELECTOR, "model-viewer")
    assert [viewer.get_attribute("data-glb") for viewer in viewers] == ["stage", "refine"]
    for viewer, channel in zip(viewers, (0, 2)):  # red vertex colours, blue texture
        browser.execute_script("arguments[0].scrollIntoView()", viewer)
        WebDriverWait(browser, VIEWER_TIMEOUT_S).until(
            lambda _, viewer=viewer: viewer.get_attribute("data-loaded") or viewer.get_attribute("data-load-error")
        )
        assert viewer.get_attribute("data-loaded") == "true", viewer.get_attribute("data-load-error")
        pixels = screenshot(viewer).reshape(-1, 3).astype(int)
        drawn = np.abs(pixels - pixels[0]).sum(axis=1) > 30  # the corner pixel is the background
        assert drawn.mean() > 0.05, f"only {drawn.mean():.1%} of the viewer differs from its background"
        colour = pixels[drawn].mean(axis=0)
        assert colour.argmax() == channel and colour[channel] > 1.5 * np.delete(colour, channel).max(), colour
    assert errors_logged(browser) == []


def test_a_run_page_loads_its_mesh_without_errors(browser, run_dir):
    """A run's page loads its mesh in the viewer with no error logged (the README's picture of a real run's page
    is made the same way by bench/readme_pictures.py)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(write_report(run_dir).resolve().as_uri())
    viewer = browser.find_element(By.CSS_SELECTOR, "model-viewer")
    WebDriverWait(browser, VIEWER_TIMEOUT_S).until(lambda _: viewer.get_attribute("data-loaded"))
    assert errors_logged(browser) == []


def test_the_batch_page_lists_every_job_and_the_filter_hides_the_refused(browser, batch_dir):
    from selenium.webdriver.common.by import By

    browser.get((batch_dir / "report" / "index.html").resolve().as_uri())
    cards = browser.find_elements(By.CSS_SELECTOR, ".job")
    assert sorted(card.get_attribute("data-state") for card in cards) == ["done", "done", "refused"]
    assert all(card.is_displayed() for card in cards)
    browser.find_element(By.CSS_SELECTOR, 'input[data-state-filter="refused"]').click()
    shown = {card.get_attribute("data-state"): card.is_displayed() for card in cards}
    assert shown == {"done": True, "refused": False}
    assert browser.find_element(By.ID, "shown").text == "2"
    browser.find_element(By.ID, "search").send_keys("blue")
    assert [card.get_attribute("data-prompt") for card in cards if card.is_displayed()] == ["a blue sphere"]
    assert errors_logged(browser) == []


def test_a_config_yaml_that_is_not_utf8_is_shown_with_replacement_characters(tmp_path, capsys):
    run = fake_run(tmp_path / "run", {"stage": "nerf", "prompt": "a red cube"})
    (run / "config.yaml").write_bytes(b"prompt: a red cube\nnote: caf\xe9\n")
    assert text3d_main(["report", str(run)]) == 0
    page = (run / "report" / "index.html").read_text()
    assert "note: caf\ufffd" in page


@pytest.mark.parametrize("moment", ["before it renames the old report away", "before it renames its own in"])
def test_a_report_swapped_in_while_another_writer_swaps_its_own_stays_whole(tmp_path, monkeypatch, moment):
    """Two reports of one folder written at once (a batch's own and a ``text3d report`` of it): the other writer's
    rename lands at either moment of this one's swap, and one whole report stays."""
    from dreamlift.report.writer import swap_in

    target, staging, theirs = tmp_path / "report", tmp_path / ".report.ours", tmp_path / ".report.theirs"
    for folder, text in ((target, "old"), (staging, "ours"), (theirs, "theirs")):
        folder.mkdir()
        (folder / "index.html").write_text(text)
    real_rename = Path.rename
    interfered = []

    def rename(self, destination):
        if moment == "before it renames the old report away" and self == target and not interfered:
            interfered.append(True)  # the other writer has just renamed the old report away itself
            real_rename(target, tmp_path / ".report.old.theirs")
        if moment == "before it renames its own in" and self == staging and not interfered:
            interfered.append(True)  # the other writer's report has just gone in
            real_rename(theirs, target)
        return real_rename(self, destination)

    monkeypatch.setattr(Path, "rename", rename)
    swap_in(staging, target)
    assert interfered and (target / "index.html").read_text() in ("ours", "theirs")
