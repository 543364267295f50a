"""The studio (``text3d serve``): its queue and progress records, its security (tokens, hosts, origins, paths), and
the whole of it in a real headless browser — a job queued from the form forms on the page and ends in the viewer,
a job is cancelled, and a restarted studio runs what was queued."""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_TEXT3D, VIEWER_TIMEOUT_S, errors_logged
from PIL import Image

from dreamlift.batch.job_progress import PROGRESS_FILE, ProgressFile, read_progress
from dreamlift.batch.status import read_status
from dreamlift.errors import UsageError
from dreamlift.progress import Progress
from dreamlift.studio.queue import QUEUE_FILE, JobQueue
from dreamlift.studio.serve import is_loopback

STUDIO_SETTINGS = [line for line in FAST_TEXT3D if not line.startswith(("renderer.", "train.resolution"))]
"""A quick text3d job whose steps still take a moment each (64-pixel renders), so that a page sees them go by."""
START_TIMEOUT_S = 60
JOB_TIMEOUT_S = 180
SERVE = ["-c", "import sys; from dreamlift.cli import text3d_main; sys.exit(text3d_main(sys.argv[1:]))", "serve"]
"""``text3d serve`` with this interpreter."""


# --- records -------------------------------------------------------------------------------------------------------
def test_a_progress_file_holds_the_step_its_pace_and_the_newest_picture(tmp_path, monkeypatch):
    clock = iter([100.0, 101.0, 101.1, 103.0, 104.0])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    (tmp_path / "validation").mkdir()
    picture = tmp_path / "validation" / "live.png"
    picture.write_bytes(b"png")
    progress = ProgressFile(tmp_path)
    progress(Progress("text3d", 1, 5, 2.5, picture, "NeRF"))  # t=100: the stage's first step
    assert read_progress(tmp_path) == {
        "stage": "text3d", "title": "NeRF", "step": 1, "steps": 5, "loss": 2.5, "eta_s": None,
        "preview": "validation/live.png", "time": 100.0,
    }  # fmt: skip
    progress(Progress("text3d", 2, 5, 2.0, None, "NeRF"))  # t=101: written (a second since the last), 1 s a step
    assert read_progress(tmp_path)["eta_s"] == 3.0 and read_progress(tmp_path)["preview"] == "validation/live.png"
    progress(Progress("text3d", 3, 5, 1.5, None, "NeRF"))  # t=101.1: too soon, not written
    assert read_progress(tmp_path)["step"] == 2
    progress(Progress("export", 0, 1, title="export"))  # t=103: a new stage is written at once
    assert read_progress(tmp_path)["title"] == "export" and read_progress(tmp_path)["eta_s"] is None


@pytest.mark.parametrize(
    "change",
    [{"step": "3"}, {"preview": "../../etc/passwd"}, {"preview": "/etc/passwd"}, {"loss": True}, {"time": None}],
)
def test_a_progress_record_that_is_not_one_reads_as_none(tmp_path, change):
    record = {"stage": "text3d", "title": "NeRF", "step": 1, "steps": 5, "loss": 1.0, "eta_s": 2.0, "preview": None}
    (tmp_path / PROGRESS_FILE).write_text(json.dumps({**record, "time": 1.0, **change}))
    assert read_progress(tmp_path) is None


def test_the_queue_makes_jobs_as_a_manifest_does_and_refuses_a_bad_form_whole(tmp_path, tiny_prior_dir):
    queue = JobQueue(tmp_path, live_view_every_s=0.5)
    form = {"kind": "text3d", "prompt": " a red cube ", "steps": "10", "seed": "3", "model": str(tiny_prior_dir)}
    job = queue.submit({**form, "settings": "train.resolution=32\n# a comment\n"})
    assert job.prompt == "a red cube" and job.config["seed"] == 3 and job.config["train"]["steps"] == 10
    assert job.config["train"]["resolution"] == 32 and job.config["train"]["live_view_every_s"] == 0.5
    again = queue.submit({**form, "settings": "train.resolution=32"})
    assert again.id == job.id and [q.job.id for q in queue.jobs()] == [job.id]  # the same job, asked for twice
    video = queue.submit({"kind": "text2video", "prompt": "a red cube moving right", "settings": "mode=zero-shot"})
    assert video.kind == "text2video" and video.line == 2 and video.config["mode"] == "zero-shot"
    bad_forms = {
        "the prompt is missing or empty": {"prompt": "  "},
        "seed must be a whole number": {"prompt": "a cube", "seed": "1.5"},
        "must be a preset name": {"prompt": "a cube", "config": "../evil.yaml"},
        "unknown config key 'train.stepz'": {"prompt": "a cube", "settings": "train.stepz=3"},
        "is not key=value": {"prompt": "a cube", "settings": "train.steps"},
        "unknown kind of job": {"prompt": "a cube", "kind": "text2mesh"},
        "model folder not found": {"prompt": "a cube", "model": str(tmp_path / "no-model")},
        "the picture must be one of": {"prompt": "a cube", "image": {"name": "x.exe", "data": ""}},
        "is not a picture dreamlift can read": {"prompt": "a cube", "image": {"name": "x.png", "data": "AAAA"}},
    }
    lines = (tmp_path / QUEUE_FILE).read_text()
    for message, bad in bad_forms.items():
        with pytest.raises(UsageError, match=message):
            queue.submit(bad)
    assert (tmp_path / QUEUE_FILE).read_text() == lines
    assert not (tmp_path / "uploads").exists() or list((tmp_path / "uploads").iterdir()) == []


def test_a_picture_sent_with_the_form_is_kept_once_and_makes_an_image_to_3d_job(tmp_path):
    pixels = np.full((32, 32, 3), 255, dtype=np.uint8)
    pixels[8:24, 8:24] = (200, 20, 20)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    data = base64.b64encode(png.getvalue()).decode()
    queue = JobQueue(tmp_path, live_view_every_s=1.0)
    job = queue.submit({"prompt": "", "image": {"name": "red square.png", "data": data}})
    kept = Path(job.config["reference"]["image"])
    assert kept.parent == (tmp_path / "uploads").resolve() and kept.read_bytes() == png.getvalue()
    again = queue.submit({"prompt": "", "image": {"name": "the same.png", "data": data}})
    assert again.id == job.id and len(list((tmp_path / "uploads").iterdir())) == 1


# --- a studio server ----------------------------------------------------------------------------------------------
class StudioProcess:
    """``text3d serve`` in a process of its own, and the address it printed."""

    def __init__(self, folder: Path, *args: str):
        starts = len(list(folder.parent.glob(f"{folder.name}-serve-*.log")))
        self.log = folder.parent / f"{folder.name}-serve-{starts}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, *SERVE, "--port", "0", "--out", str(folder), *args],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.time() + START_TIMEOUT_S
        while not (found := re.search(r"is at (http://\S+)", self.log.read_text())):
            assert self.process.poll() is None and time.time() < deadline, self.log.read_text()
            time.sleep(0.1)
        self.url = found.group(1)
        self.port = int(re.search(r":(\d+)/", self.url).group(1))

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request(method, path, body, headers or {})
        return connection.getresponse()

    def job(self, job_id: str) -> dict:
        """What the API says of a job."""
        return next(view for view in json.loads(self.request("GET", "/api/jobs").read()) if view["id"] == job_id)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(30) == 130, self.log.read_text()


@pytest.fixture
def studio(tmp_path):
    server = StudioProcess(tmp_path / "studio")
    yield server
    if server.process.poll() is None:
        server.stop()


def test_the_studio_serves_files_of_its_folder_only_and_answers_its_own_pages_only(studio, tmp_path):
    folder = tmp_path / "studio"
    (folder / "job").mkdir()
    (folder / "job" / "mesh.glb").write_bytes(b"glTF")
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "job" / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert studio.request("GET", "/files/job/mesh.glb").read() == b"glTF"
    for path in ("/files/../secret.txt", "/files/job/../../secret.txt", "/files/%2e%2e/secret.txt",
                 "/files/job/link.txt", "/files//etc/passwd", "/files/job/%00x", "/assets/../serve.py"):  # fmt: skip
        assert studio.request("GET", path).status == 404, path
    assert studio.request("GET", "/", headers={"Host": "attacker.example:80"}).status == 403  # DNS rebinding
    form = json.dumps({"prompt": "a red cube"})
    elsewhere = {"Content-Type": "application/json", "Origin": "http://attacker.example"}
    assert studio.request("POST", "/api/jobs", form, elsewhere).status == 403
    assert studio.request("POST", "/api/jobs", "prompt=a+cube", {"Content-Type": "text/plain"}).status == 415
    assert not (folder / QUEUE_FILE).exists()
    page = studio.request("GET", "/")
    policy = page.getheader("Content-Security-Policy")
    assert page.status == 200 and "default-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]


def test_a_studio_on_another_address_needs_its_token(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    server = StudioProcess(tmp_path / "studio", "--host", "0.0.0.0")
    try:
        token = re.search(r"\?token=(\S+)", server.url).group(1)
        assert server.request("GET", "/").status == 403
        assert server.request("GET", "/api/jobs").status == 403
        assert server.request("GET", "/?token=wrong").status == 403
        assert server.request("GET", "/", headers={"Cookie": 'broken="'}).status == 403
        welcome = server.request("GET", f"/?token={token}")
        assert welcome.status == 303 and welcome.getheader("Location") == "/"
        cookie = welcome.getheader("Set-Cookie").split(";")[0]
        assert "HttpOnly" in welcome.getheader("Set-Cookie")
        assert server.request("GET", "/", headers={"Cookie": cookie}).status == 200
        assert server.request("GET", "/api/jobs", headers={"Authorization": f"token {token}"}).status == 200
    finally:
        server.stop()


def test_a_text2video_job_runs_in_the_studio_and_offers_its_clip(studio, tiny_prior_dir, tmp_path):
    form = {"kind": "text2video", "prompt": "a red cube moving right", "model": str(tiny_prior_dir), "steps": 2,
            "settings": "mode=zero-shot\nframes=3"}  # fmt: skip
    answer = studio.request("POST", "/api/jobs", json.dumps(form), {"Content-Type": "application/json"})
    assert answer.status == 201
    job_id = json.loads(answer.read())["id"]
    deadline, view = time.time() + JOB_TIMEOUT_S, studio.job(job_id)
    while view["state"] in ("queued", "running"):
        assert time.time() < deadline, view
        time.sleep(0.5)
        view = studio.job(job_id)
    assert view["state"] == "done", view
    assert [item["name"] for item in view["files"]] == ["video.mp4", "video.gif"] and view["mesh"] is None
    clip = studio.request("GET", view["videos"][0])
    assert clip.getheader("Content-Type") == "video/mp4"
    assert clip.read() == (tmp_path / "studio" / job_id / "video.mp4").read_bytes()


def test_a_second_studio_on_the_same_folder_is_refused_in_one_line(studio, tmp_path):
    second = subprocess.run(
        [sys.executable, *SERVE, "--port", "0", "--out", str(tmp_path / "studio")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2 and second.stderr.count("\n") == 1 and "is being written by" in second.stderr


# --- in a real browser ---------------------------------------------------------------------------------------------
HOSTILE_PROMPT = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> a cube'


def submit_form(browser, prompt: str, steps: int, model: Path | str, settings: list[str]) -> None:
    """Fill the form and press its button."""
    from selenium.webdriver.common.by import By

    form = browser.find_element(By.ID, "job-form")
    for name, value in (("prompt", prompt), ("steps", str(steps)), ("model", str(model))):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    if not form.find_element(By.NAME, "settings").is_displayed():
        form.find_element(By.TAG_NAME, "summary").click()
    settings_field = form.find_element(By.NAME, "settings")
    settings_field.clear()
    settings_field.send_keys("\n".join(settings))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def queue_job(browser, prompt: str, steps: int, model: Path | str, settings: list[str]) -> str:
    """Queue a job from the form and return its id (the page selects the job it queued)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    before = browser.find_element(By.ID, "detail").get_attribute("data-id")
    submit_form(browser, prompt, steps, model, settings)
    WebDriverWait(browser, 30).until(
        lambda _: (
            browser.find_element(By.ID, "detail").get_attribute("data-id") not in (None, "", before)
            or browser.find_element(By.ID, "form-error").text
        )
    )
    assert browser.find_element(By.ID, "form-error").text == ""
    return browser.find_element(By.ID, "detail").get_attribute("data-id")


def card(browser, job_id: str):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'#jobs .job[data-id="{job_id}"]')


def state_of(browser, job_id: str) -> str | None:
    """The state the page shows for the job (None while it has no card)."""
    script = (
        "for (const card of document.querySelectorAll('#jobs .job')) "
        "if (card.dataset.id === arguments[0]) return card.dataset.state; return null;"
    )
    return browser.execute_script(script, job_id)


def shown_step(browser, job_id: str) -> int:
    """The step the page shows of the job while it is the selected one (0 otherwise, or before its first step)."""
    script = (
        "return document.getElementById('detail').dataset.id === arguments[0] "
        "&& document.getElementById('progress-step').dataset.step;"
    )
    return int(browser.execute_script(script, job_id) or 0)


def wait_for_state(browser, job_id: str, *states: str, timeout: float = JOB_TIMEOUT_S) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(lambda _: state_of(browser, job_id) in states)


def test_the_studio_in_a_browser_forms_a_job_cancels_one_and_resumes_its_queue_after_a_restart(
    browser, tiny_prior_dir, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    folder = tmp_path / "studio"
    server = StudioProcess(folder, "--live-view-every", "0.01")
    try:
        browser.get(server.url)
        # A bad form is refused in the form, in the line the command line prints, and queues nothing.
        submit_form(browser, "a red cube", 10, tiny_prior_dir, ["train.stepz=3"])
        error = browser.find_element(By.ID, "form-error")
        WebDriverWait(browser, 30).until(lambda _: error.text)
        assert error.text.startswith("text3d: error: unknown config key 'train.stepz'")
        assert browser.find_elements(By.CSS_SELECTOR, "#jobs .job") == []
        assert [entry["message"].split(" - ")[1] for entry in errors_logged(browser)] == [
            "Failed to load resource: the server responded with a status of 400 (Bad Request)"
        ]  # the refusal itself, and nothing else
        # A job from the form forms on the page: its step advances and its render changes, each render shown
        # within 2 s of being written; then the viewer shows its mesh and the GLB link gives the run's file.
        first = queue_job(browser, "a red cube", 10, tiny_prior_dir, STUDIO_SETTINGS)
        wait_for_state(browser, first, "done")
        renders = browser.execute_script("return window.studioRenders")
        assert len({render["step"] for render in renders}) >= 2, renders
        assert len({render["url"] for render in renders}) >= 2, renders
        delays = [(render["shownAt"] - render["writtenAt"]) / 1000 for render in renders]
        assert max(delays) <= 2.0, delays
        viewer = browser.find_element(By.ID, "viewer")
        WebDriverWait(browser, VIEWER_TIMEOUT_S).until(
            lambda _: viewer.get_attribute("data-loaded") or viewer.get_attribute("data-load-error")
        )
        assert viewer.get_attribute("data-loaded") == "true", viewer.get_attribute("data-load-error")
        links = {link.text: link.get_attribute("href") for link in browser.find_elements(By.CSS_SELECTOR, "a.download")}
        assert {"mesh.glb", "mesh.obj", "mesh.ply", "turntable.mp4"} <= set(links)
        with urllib.request.urlopen(links["mesh.glb"]) as answer:
            assert answer.read() == (folder / first / "mesh.glb").read_bytes()

        # A job the library refuses as it runs says why in the same one line.
        refused = queue_job(browser, "a red cube", 10, "nobody/no-such-model", STUDIO_SETTINGS)
        wait_for_state(browser, refused, "refused")
        assert (
            card(browser, refused)
            .find_element(By.CSS_SELECTOR, ".error")
            .text.startswith("text3d: error: cannot load model nobody/no-such-model")
        )

        # A long job runs; one queued behind it shows its hostile prompt as text.
        long_settings = [*STUDIO_SETTINGS, "train.checkpoint_every=5"]
        second = queue_job(browser, "a blue sphere", 100_000, tiny_prior_dir, long_settings)
        WebDriverWait(browser, JOB_TIMEOUT_S).until(lambda _: shown_step(browser, second) >= 6)
        third = queue_job(browser, HOSTILE_PROMPT, 10, tiny_prior_dir, STUDIO_SETTINGS)
        assert state_of(browser, third) == "queued"
        assert card(browser, third).find_element(By.CSS_SELECTOR, ".prompt").text == HOSTILE_PROMPT
        assert browser.execute_script("return window.pwned === undefined")
        assert browser.find_elements(By.CSS_SELECTOR, "#jobs script, #jobs img, #detail-prompt *") == []

        # The studio restarts: the running job resumes from its checkpoint; cancelled, its worker takes the next.
        server.stop()
        old_events = f"{server.url}events - Failed to load resource: net::ERR_CONNECTION_REFUSED"
        server = StudioProcess(folder, "--live-view-every", "0.01")
        browser.get(server.url)
        # The page of the stopped server tries its event stream again until it is left: that, and nothing else.
        assert {entry["message"] for entry in errors_logged(browser)} <= {old_events}
        wait_for_state(browser, second, "running")
        assert state_of(browser, third) == "queued"
        card(browser, second).click()
        WebDriverWait(browser, 30).until(lambda _: shown_step(browser, second) > 6)
        browser.find_element(By.ID, "cancel").click()
        wait_for_state(browser, second, "cancelled", timeout=30)
        wait_for_state(browser, third, "done")
        time.sleep(1)
        updates = browser.execute_script("return window.studioUpdates")
        time.sleep(3)  # nothing runs: the page is sent nothing (and polls nothing)
        assert browser.execute_script("return window.studioUpdates") == updates
        outcomes = [(r["id"], r["outcome"], r.get("resumed")) for r in read_status(folder)]
        assert (second, "running", True) in outcomes and (second, "cancelled", None) in outcomes
        assert (errors := errors_logged(browser)) == [], errors
    finally:
        if server.process.poll() is None:
            server.stop()
