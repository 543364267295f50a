"""The README's pictures, from real run folders: turntable stills (four views of each run's exported mesh, a row
a run, its prompt on the left) and a screenshot of one run's report page in headless Chromium.

    python bench/readme_pictures.py --stills RUN_DIR [RUN_DIR ...] --report RUN_DIR --out docs/

Needs Chromium and its driver for the screenshot (Debian: apt-get install chromium chromium-driver) and selenium.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw

from dreamlift.report import write_report

VIEWS = 4
"""Stills per run, evenly spaced around the turntable."""
LABEL_WIDTH = 150
"""Pixels left of each row for its prompt."""
BROWSER_FLAGS = ["--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
"""Headless Chromium with WebGL on the CPU (as the report's tests run it)."""


def stills(run_dirs: list[Path], out: Path) -> None:
    """One row per run: VIEWS frames of its turntable.mp4, its prompt (from the folder's name) on the left."""
    rows = []
    for run in run_dirs:
        frames = iio.imread(run / "turntable.mp4", index=None)
        picked = frames[np.linspace(0, len(frames), VIEWS, endpoint=False).astype(int)]
        row = Image.fromarray(np.concatenate(list(picked), axis=1))
        labelled = Image.new("RGB", (LABEL_WIDTH + row.width, row.height), "white")
        labelled.paste(row, (LABEL_WIDTH, 0))
        prompt = run.name.split("-seed")[0].replace("-", " ")
        ImageDraw.Draw(labelled).text((8, row.height // 2 - 6), prompt, fill="black")
        rows.append(np.asarray(labelled))
    iio.imwrite(out, np.concatenate(rows, axis=0))


def report_screenshot(run_dir: Path, out: Path, timeout_s: float = 90.0) -> None:
    """The run's report page, once its 3D viewer has loaded the mesh."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1200,1400")
    browser = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
    try:
        browser.get(write_report(run_dir).resolve().as_uri())
        viewer = browser.find_element(By.CSS_SELECTOR, "model-viewer")
        WebDriverWait(browser, timeout_s).until(lambda _: viewer.get_attribute("data-loaded"))
        out.write_bytes(browser.find_element(By.TAG_NAME, "body").screenshot_as_png)
    finally:
        browser.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stills", type=Path, nargs="*", default=[], help="run folders, a row each")
    parser.add_argument("--report", type=Path, default=None, help="the run folder whose report page is shown")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    if args.stills:
        stills(args.stills, args.out / "turntables.png")
    if args.report:
        report_screenshot(args.report, args.out / "report-run.png")


if __name__ == "__main__":
    main()
