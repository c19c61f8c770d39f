#!/usr/bin/env python
"""How soon a person can use the app after `streamlit run app.py`, measured in headless Chromium.

    python benchmarks/app_start.py [--repeats 3] [--model PATH]

For each repeat: start a fresh Streamlit server, open the page, and time
- server answering (health endpoint),
- page interactive (the file uploader is on screen),
- first result (a fundus photo uploaded the moment the uploader appears -> its result heading and chart shown).
Needs Debian's chromium and the playwright package (both in requirements-dev / .ci/run).
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(photo: Path, model: str | None) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, **({"CLARITYX_MODEL": model} if model else {})}
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        t_server = time.perf_counter() - t0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--no-first-run"])
            page = browser.new_page()
            t_open = time.perf_counter()
            page.goto(url)
            upload = page.locator("input[type=file]").first
            upload.wait_for(state="attached", timeout=60_000)
            t_interactive = time.perf_counter()
            upload.set_input_files(str(photo))
            # The result's heading, then its chart (the start page's expectations chart is gone by then).
            page.locator("h3", has_text="most like").first.wait_for(timeout=120_000)
            page.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=120_000)
            t_result = time.perf_counter()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"server": t_server, "interactive_after_open": t_interactive - t_open,
            "interactive": t_interactive - t0, "first_result": t_result - t0,
            "result_after_upload": t_result - t_interactive}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model")
    args = ap.parse_args()
    import skimage.data
    from PIL import Image

    photo = Path(tempfile.mkdtemp()) / "retina.jpg"
    Image.fromarray(skimage.data.retina()).save(photo, quality=92)
    runs = [one_run(photo, args.model) for _ in range(args.repeats)]
    print(f"app start, {args.repeats} fresh servers (seconds from `streamlit run`; median [min-max])")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key:24s} {statistics.median(values):6.2f} [{min(values):.2f}-{max(values):.2f}]")


if __name__ == "__main__":
    main()
