"""The studio measured in headless Chromium: how soon a render the trainer writes is on the page, what an idle page
and an idle server cost, what the live view costs a run, and the README's screenshot of a real run.

    python bench/studio.py --out /tmp/studio-bench --screenshot docs/studio.png [--compare]

It starts ``text3d serve`` on the embedded prior, queues one job from the form (default preset, seed 0), follows
it to the end, then leaves the page open and idle. ``--compare`` also runs the same job with the command line (no
live view) and prints both runs' seconds per step. Needs Chromium, its driver and selenium.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from readme_pictures import BROWSER_FLAGS

SERVE = ["-c", "import sys; from dreamlift.cli import text3d_main; sys.exit(text3d_main(sys.argv[1:]))"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_usage(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and resident memory (MiB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def page_metrics(browser) -> dict[str, float]:
    return {m["name"]: m["value"] for m in browser.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}


def idle(browser, server: subprocess.Popen, seconds: float) -> dict[str, float]:
    """What the open page and the server cost over ``seconds`` of doing nothing."""
    cpu0, _ = process_usage(server.pid)
    page0, updates0 = page_metrics(browser), browser.execute_script("return window.studioUpdates")
    time.sleep(seconds)
    cpu1, rss = process_usage(server.pid)
    page1, updates1 = page_metrics(browser), browser.execute_script("return window.studioUpdates")
    return {
        "server CPU %": 100 * (cpu1 - cpu0) / seconds,
        "server RSS MiB": rss,
        "page main-thread CPU %": 100 * (page1["TaskDuration"] - page0["TaskDuration"]) / seconds,
        "page JS heap MiB": page1["JSHeapUsedSize"] / 2**20,
        "page updates received": updates1 - updates0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the studio's folder (made afresh)")
    parser.add_argument("--prompt", default="a red cube")
    parser.add_argument("--screenshot", type=Path, default=None, help="where to write the page at the job's end")
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--compare", action="store_true", help="also time the same job run by the command line")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    log = open(args.out.parent / f"{args.out.name}-serve.log", "w")  # open while the server lives
    server = subprocess.Popen(
        [sys.executable, *SERVE, "serve", "--port", "0", "--out", str(args.out)], stdout=log, stderr=log
    )
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in [*BROWSER_FLAGS, "--window-size=1440,1100"]:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
    try:
        while not (found := re.search(r"is at (http://\S+)", Path(log.name).read_text())):
            time.sleep(0.2)
        browser.get(found.group(1))
        browser.execute_cdp_cmd("Performance.enable", {})
        time.sleep(5)  # the page's own loading is not idling
        before = idle(browser, server, args.idle_s)
        browser.find_element(By.NAME, "prompt").send_keys(args.prompt)
        start = time.time()
        browser.find_element(By.CSS_SELECTOR, "#job-form button[type=submit]").click()
        detail = browser.find_element(By.ID, "detail")
        WebDriverWait(browser, 3600, poll_frequency=1).until(lambda _: detail.get_attribute("data-state") == "done")
        wall = time.time() - start
        viewer = browser.find_element(By.ID, "viewer")
        WebDriverWait(browser, 120).until(lambda _: viewer.get_attribute("data-loaded"))
        renders = browser.execute_script("return window.studioRenders")
        if args.screenshot:
            time.sleep(2)  # the turntable's first frames
            args.screenshot.write_bytes(browser.find_element(By.TAG_NAME, "body").screenshot_as_png)
        after = idle(browser, server, args.idle_s)
    finally:
        browser.quit()
        server.terminate()
        server.wait(60)
    job = next(path for path in args.out.iterdir() if (path / "done.json").is_file())
    metrics = json.loads((job / "metrics.json").read_text())
    delays = [(r["shownAt"] - r["writtenAt"]) / 1000 for r in renders]
    print(f"job: {args.prompt!r}, {metrics['steps']} steps, {wall:.0f} s from the click to 'done' on the page")
    print(f"renders shown: {len(renders)}; seconds from written to shown: median {statistics.median(delays):.2f}, "
          f"max {max(delays):.2f}")  # fmt: skip
    print(f"| idle, {args.idle_s:.0f} s | no job yet | after the job (its turntable playing) |\n| --- | --- | --- |")
    for name in before:
        print(f"| {name} | {before[name]:.2f} | {after[name]:.2f} |")
    if args.compare:
        plain = args.out.parent / f"{args.out.name}-plain"
        shutil.rmtree(plain, ignore_errors=True)
        subprocess.run([sys.executable, *SERVE, args.prompt, "--out", str(plain)], check=True)
        plain_metrics = json.loads((plain / "metrics.json").read_text())
        print(f"s/step: studio (live views) {metrics['seconds_per_step']:.3f}, "
              f"command line {plain_metrics['seconds_per_step']:.3f}: "
              f"{metrics['seconds_per_step'] / plain_metrics['seconds_per_step']:.3f}×")  # fmt: skip


if __name__ == "__main__":
    main()
