"""One real-browser test: the app in a Streamlit server, driven by headless Chromium."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None,
                                 reason="Debian's chromium is not installed (apt-get install chromium)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(str):
    """The app's URL, and the server's process id."""

    def __new__(cls, url: str, pid: int):
        obj = super().__new__(cls, url)
        obj.pid = pid
        return obj


def start_server(model: str | None, **env_overrides: str):
    port = free_port()
    env = {**os.environ, **({"CLARITYX_MODEL": model} if model else {}), **env_overrides}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])
    return Server(url, proc.pid), proc


@pytest.fixture
def server(tiny_model, tmp_path):
    """The app on the tiny model, with a private history file (a saved visit stays in the test)."""
    url, proc = start_server(str(tiny_model), CLARITYX_HISTORY=str(tmp_path / "history.sqlite3"))
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def bundled_server():
    """The app on the bundled model (its ONNX graph), as `make run` starts it."""
    url, proc = start_server(None)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_upload_retina_shows_result_chart_and_the_report_downloads(server, retina_png, tiny_model):
    import json

    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(server)
            page.locator("input[type=file]").first.set_input_files(str(retina_png), timeout=60_000)
            page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
            text = page.inner_text("body")
            assert "most like" in text and "not a diagnosis" in text
            # The report for the doctor, as a person downloads it: a PDF that opens and names the model.
            with page.expect_download(timeout=120_000) as download:
                page.get_by_text("Report for your eye doctor (PDF)").click()
            pdf = PdfReader(download.value.path()).pages[0].extract_text()
            card = json.loads(tiny_model.with_name(tiny_model.stem + ".card.json").read_text())
            assert card["name"] in pdf and f"version {card['training'].get('finished', 'unknown')}" in pdf
        finally:
            browser.close()


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


def test_a_whole_visit_asks_nothing_of_any_host_but_the_app(server, retina_png, tmp_path, monkeypatch):
    """Issue 19, item 5: the tab icon came from a Google fonts host, and moving the opacity slider left
    404s for /media/*.jpg. Both eyes, the heat map, saving, the report, the History and Model pages: every
    request the browser makes is recorded (requests elsewhere are refused, so the test needs no network),
    and each must go to the app's own host and find what it asked for."""
    from urllib.parse import urlparse

    from playwright.sync_api import sync_playwright

    import numpy as np
    import skimage.data
    from PIL import Image

    left = tmp_path / "left.png"
    Image.fromarray(np.roll(skimage.data.retina(), 60, axis=1)).save(left)
    own = urlparse(server).netloc
    elsewhere, failed = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            context = browser.new_context(accept_downloads=True)

            def guard(route):
                url = urlparse(route.request.url)
                if url.scheme in ("http", "https", "ws", "wss") and url.netloc != own:
                    elsewhere.append(route.request.url)
                    return route.abort()
                return route.continue_()

            context.route("**/*", guard)
            context.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})")
                       if urlparse(r.url).netloc == own else None)
            context.on("response", lambda r: failed.append(f"{r.url} ({r.status})") if r.status >= 400 else None)
            page = context.new_page()
            page.goto(server)
            uploads = page.locator("input[type=file]")
            uploads.nth(0).set_input_files(str(retina_png), timeout=60_000)
            page.get_by_text("Right eye: most like").wait_for(timeout=120_000)
            uploads.nth(1).set_input_files(str(left), timeout=60_000)
            page.get_by_text("Left eye: most like").wait_for(timeout=120_000)
            # The heat map: another class, then the opacity slider moved by keyboard.
            slider = page.get_by_role("slider").first
            slider.focus()
            for _ in range(4):
                slider.press("ArrowRight")
                page.wait_for_timeout(400)
            page.wait_for_timeout(2000)
            page.get_by_role("button", name="Save this visit to my history").click()
            page.get_by_text("Saved on this computer").wait_for(timeout=60_000)
            with page.expect_download(timeout=120_000) as download:
                page.get_by_text("Report for your eye doctor (PDF)").click()
            assert download.value.suggested_filename.startswith("clarityx-report-")
            page.get_by_role("link", name="History").click()
            page.get_by_text("Your screening history").wait_for(timeout=60_000)
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            page.get_by_role("link", name="Model").click()
            page.get_by_text("Training data").wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            icon = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
        finally:
            browser.close()
    assert elsewhere == [], f"requests to other hosts: {elsewhere}"
    assert failed == [], f"failed requests: {failed}"
    assert icon and all(urlparse(h).netloc in (own, "") for h in icon), icon


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process (Linux)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


ODIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "odir5k" / "preprocessed_images"


@pytest.mark.skipif(not ODIR.is_dir(), reason="needs the shared ODIR-5K photos")
def test_eight_people_at_once_see_only_their_own_results(bundled_server):
    """Load: eight browser sessions on one running app upload different photos at the same moment,
    twice each. Every session must show the heading its own photo gives when screened alone, and the
    server's memory must stay bounded. (Streamlit's AppTest cannot do this: it swaps a process-wide
    runtime singleton per run, so it is one session at a time.)"""
    import asyncio

    from playwright.async_api import async_playwright

    from app_pages.guidance import label
    from clarityx.loader import load_classifier
    from clarityx.screening.pipeline import analyse

    server, sessions, rounds = bundled_server, 8, 2
    classifier = load_classifier()
    expected, photos = {}, {}
    for path in sorted(ODIR.glob("*.jpg"))[::37][:80]:  # photos whose headings all differ: a mix-up shows
        result = analyse(classifier, path.read_bytes(), explain=False)
        if result.status == "ok":
            heading = f"most like {label(result.top)} ({result.ranked[0][1]:.0%})"
            if heading not in expected.values():
                photos[len(photos)] = path
                expected[path] = heading
        if len(photos) == sessions * rounds:
            break
    assert len(photos) == sessions * rounds

    async def open_page(browser):
        page = await (await browser.new_context()).new_page()
        await page.goto(server, timeout=180_000, wait_until="domcontentloaded")
        await page.locator("input[type=file]").first.wait_for(state="attached", timeout=180_000)
        return page

    async def person(page, s: int) -> list[tuple[str, str]]:
        seen = []
        for r in range(rounds):
            photo = photos[s * rounds + r]
            await page.locator("input[type=file]").first.set_input_files(str(photo), timeout=120_000)
            heading = page.locator("h3", has_text=expected[photo])
            await heading.first.wait_for(timeout=180_000)
            seen.append((expected[photo], await page.locator("h3", has_text="most like").first.inner_text()))
        return seen

    async def everyone():
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--no-first-run"])
            try:  # everybody's page open first; then all upload at the same moment
                pages = await asyncio.gather(*(open_page(browser) for _ in range(sessions)))
                return await asyncio.gather(*(person(page, s) for s, page in enumerate(pages)))
            finally:
                await browser.close()

    t0 = time.perf_counter()
    results = [r for rs in asyncio.run(everyone()) for r in rs]
    seconds = time.perf_counter() - t0
    assert len(results) == sessions * rounds
    for wanted, shown in results:
        assert wanted in shown  # the session's own result, not a neighbour's
    peak = vm_hwm_mb(server.pid)
    assert peak < 1500, f"the server peaked at {peak:.0f} MB"
    print(f"{sessions} sessions × {rounds} photos: {len(results)} results in {seconds:.0f} s "
          f"({len(results) / seconds:.2f}/s); server peak memory {peak:.0f} MB")


@pytest.mark.skip(reason="Streamlit's delete picker does not always open in headless Chromium (a click, or the "
                         "arrow key, leaves the combobox closed); item 1 is covered by the AppTest "
                         "test_deleting_a_visit_deletes_the_one_picked_among_visits_of_one_minute. Open in issue 24.")
def test_three_visits_in_one_minute_and_the_second_is_deleted_as_a_person_picks_it(server, retina_png, tmp_path):
    """Issue 24, item 1: visits saved within one minute had identical names in the delete picker, and
    "Delete this visit" deleted another one. Three visits are saved through the page, the second is picked
    by its name in the list and deleted; the history file must keep the first and the third."""
    import sqlite3

    import numpy as np
    import skimage.data
    from PIL import Image
    from playwright.sync_api import sync_playwright

    photos = [retina_png]
    for k, shift in enumerate((60, 120)):
        path = tmp_path / f"visit{k + 2}.png"
        Image.fromarray(np.roll(skimage.data.retina(), shift, axis=1)).save(path)
        photos.append(path)
    history_file = tmp_path / "history.sqlite3"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            for n, photo in enumerate(photos):
                if n:
                    page.get_by_role("button", name="Start a new visit").click()
                    page.get_by_text("A new visit has started").wait_for(timeout=60_000)
                page.locator("input[type=file]").first.set_input_files(str(photo), timeout=60_000)
                page.get_by_text("Right eye: most like").wait_for(timeout=120_000)
                page.get_by_role("button", name="Save this visit to my history").click()
                page.get_by_text("Saved on this computer").wait_for(timeout=60_000)
            with sqlite3.connect(history_file) as db:
                saved = [row[0] for row in db.execute("SELECT id FROM visit ORDER BY taken_at, id")]
            assert len(saved) == 3
            page.get_by_role("link", name="History").click()
            page.get_by_text("Your screening history").wait_for(timeout=60_000)
            page.get_by_text("Delete", exact=True).click()  # the expander
            picker = page.get_by_label("Visit", exact=True)  # the delete picker, by its label
            picker.click()
            if picker.get_attribute("aria-expanded") != "true":  # the list opens on the arrow key, as for a person
                picker.press("ArrowDown")
            options = page.get_by_role("option")
            options.first.wait_for(timeout=30_000)
            names = options.all_inner_texts()
            assert len(names) == 3 and len(set(names)) == 3  # a person can tell them apart
            second = names[1]
            options.nth(1).click()
            page.get_by_role("button", name="Delete this visit").click()
            page.get_by_text("Deleted the visit of").wait_for(timeout=60_000)
            said = page.get_by_text("Deleted the visit of").inner_text()
        finally:
            browser.close()
    with sqlite3.connect(history_file) as db:
        left = [row[0] for row in db.execute("SELECT id FROM visit ORDER BY taken_at, id")]
    assert left == [saved[0], saved[2]]  # the second visit went, and only it
    assert second in said  # the page says which
