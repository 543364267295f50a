"""How long the HTML report of a 100-job batch takes to write, to open and to filter (issue: under 10 s to write).

    python bench/report_speed.py [--jobs 100] [--refused 5] [--repeats 3] [--out bench-runs/report-speed]

Makes (or reuses: the batch is resumable) a real ``text3d batch`` of tiny jobs on a random tiny prior — a few
steps, a small field, an 8-frame turntable — with ``--refused`` of them asking for a missing model, so the page has
two states. Then it times, one after another: ``write_report`` in this process (median of ``--repeats``), the whole
``text3d report OUT`` command (imports included), and in headless Chromium (where it exists) the page's load and a
filter and a search, measured inside the page with ``performance.now()``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TEXT3D = [
    sys.executable,
    "-c",
    "import sys; from dreamlift.cli import text3d_main; sys.exit(text3d_main(sys.argv[1:]))",
]
TINY_JOB = [
    "field.hashgrid.num_levels=4",
    "field.hashgrid.log2_hashmap_size=12",
    "renderer.num_samples=32",
    "train.resolution=16",
    "train.steps=2",
    "train.validate_every=0",
    "export.resolution=24",
    "export.turntable_frames=8",
    "export.turntable_resolution=64",
    "device=cpu",
]
BROWSER_FLAGS = ["--headless=new", "--no-sandbox", "--disable-background-networking", "--window-size=1280,900"]
PROMPTS = ("a red cube", "a blue sphere", "a yellow cone", "a green cylinder", "a purple torus")


def make_batch(out: Path, jobs: int, refused: int) -> float:
    """Run (or finish) the batch; its wall seconds."""
    from dreamlift.embedded.random_prior import build_random_prior

    prior = out.parent / "tiny-prior"
    if not prior.is_dir():
        build_random_prior(prior)
    manifest = out.parent / "manifest.jsonl"
    lines = [{"prompt": f"{PROMPTS[i % len(PROMPTS)]} number {i}", "seed": i} for i in range(jobs - refused)]
    lines += [{"prompt": f"a missing model {i}", "prior.model": "/no/such/model"} for i in range(refused)]
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    start = time.time()
    workers = str(os.cpu_count() or 1)  # one thread each: tiny jobs gain nothing from more
    batch = ["batch", str(manifest), "--out", str(out), "--retries", "0", "--workers", workers]
    subprocess.run(
        [*TEXT3D, *batch, f"prior.model={prior}", *TINY_JOB], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.time() - start


def time_in_browser(index: Path) -> dict | None:
    """Load, filter and search times (ms) of the page in headless Chromium; None where there is none."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        return None
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=webdriver.ChromeService(driver), options=options)
    try:
        browser.get(index.resolve().as_uri())
        load = browser.execute_script(
            "var t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;"
        )
        timed = """
            var start = performance.now(); %s; document.body.offsetHeight;
            return [performance.now() - start, document.getElementById('shown').textContent];"""
        filter_ms, after_filter = browser.execute_script(
            timed % "document.querySelector('input[data-state-filter=refused]').click()"
        )
        search = "var s = document.getElementById('search'); s.value = 'cube'; s.dispatchEvent(new Event('input'))"
        search_ms, after_search = browser.execute_script(timed % search)
    finally:
        browser.quit()
    return {
        "load_ms": load,
        "filter_ms": filter_ms,
        "shown_after_filter": after_filter,
        "search_ms": search_ms,
        "shown_after_search": after_search,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--refused", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/report-speed/batch"))
    args = parser.parse_args()
    from dreamlift.report import write_report

    batch_seconds = make_batch(args.out, args.jobs, args.refused)
    seconds = []
    for _ in range(args.repeats):
        start = time.time()
        index = write_report(args.out)
        seconds.append(time.time() - start)
    start = time.time()
    subprocess.run([*TEXT3D, "report", str(args.out)], check=True, stderr=subprocess.DEVNULL)
    command_seconds = time.time() - start
    size = sum(f.stat().st_size for f in index.parent.rglob("*") if f.is_file()) / 2**20
    pages = len(list((index.parent / "jobs").glob("*/index.html")))
    print(f"batch of {args.jobs} tiny jobs ({args.refused} refused): {batch_seconds:.0f} s to run (or finish)")
    print(f"{'what':<34} {'value':>10}   target")
    print(f"{'write_report, median of ' + str(args.repeats):<34} {statistics.median(seconds):>8.2f} s   < 10 s")
    print(f"{'text3d report OUT (imports too)':<34} {command_seconds:>8.2f} s   < 10 s")
    print(f"{'job pages':<34} {pages:>10}")
    print(f"{'report folder':<34} {size:>7.1f} MiB")
    browser = time_in_browser(index)
    if browser is None:
        print("no headless Chromium here: page times not measured")
        return
    print(f"{'page load (navigation to load)':<34} {browser['load_ms']:>7.0f} ms")
    print(f"{'filter: hide refused':<34} {browser['filter_ms']:>7.1f} ms   shows {browser['shown_after_filter']}")
    print(f"{'search: cube':<34} {browser['search_ms']:>7.1f} ms   shows {browser['shown_after_search']}")


if __name__ == "__main__":
    main()
