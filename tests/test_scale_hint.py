"""The Many photos page's hint for folders too large for one computer (needs no Ray)."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parent.parent / "app_pages" / "batch.py"


def hint_page(page: str):
    """Runs only ``suggest_ray`` from app_pages/batch.py (the page itself needs uploads)."""
    import ast
    from pathlib import Path

    import streamlit as st

    source = Path(page).read_text()
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "suggest_ray")
    namespace = {"st": st}
    exec(compile(ast.Module([fn], []), page, "exec"), namespace)
    namespace["suggest_ray"](20_000)  # at the limit: nothing
    namespace["suggest_ray"](250_000)


def test_over_20000_photos_the_page_shows_the_ray_command():
    at = AppTest.from_function(hint_page, args=(str(PAGE),), default_timeout=30).run()
    assert not at.exception
    assert len(at.warning) == 1 and "250,000 photos are too many for one computer" in at.warning[0].value
    assert len(at.code) == 1
    assert at.code[0].value.startswith("clarityx predict PHOTOS_FOLDER --engine ray --address auto --json")
