#!/usr/bin/env python
"""Screenshots of every page as a person sees them, from a fresh app in headless Chromium.

    python scripts/screenshots.py [--out runs/screenshots] [--photos RIGHT LEFT]

Uses a private history file and settings (a temporary folder), so a person's own history is not touched.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tests.test_browser import start_server

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "runs" / "screenshots"))
    odir = ROOT.parent / "shared" / "data" / "odir5k" / "preprocessed_images"
    ap.add_argument("--photos", nargs=2, default=[str(odir / "0_right.jpg"), str(odir / "0_left.jpg")])
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["CLARITYX_HISTORY"] = str(Path(tempfile.mkdtemp()) / "history.sqlite3")
    server, proc = start_server(None)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server)
            page.locator("input[type=file]").first.wait_for(state="attached", timeout=60_000)
            page.screenshot(path=out / "1-start.png", full_page=True)
            for i, photo in enumerate(args.photos):
                page.locator("input[type=file]").nth(i).set_input_files(photo)
                page.locator(".js-plotly-plot").nth(i).wait_for(timeout=120_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=out / "2-visit-both-eyes.png", full_page=True)
            page.get_by_text("Save this visit to my history").click()
            page.get_by_text("Saved on this computer").wait_for(timeout=30_000)
            for name, link in [("3-history", "History"), ("4-many-photos", "Many photos"), ("5-retrain", "Retrain"),
                               ("6-model", "Model"), ("7-about", "About & privacy")]:
                page.get_by_role("link", name=link).click()
                page.wait_for_timeout(2500)
                page.screenshot(path=out / f"{name}.png", full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print("\n".join(str(p) for p in sorted(out.glob("*.png"))))


if __name__ == "__main__":
    main()
