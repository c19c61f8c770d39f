"""Whether a model was tested on enough photos to tell how well it works.

A model card records its held-out test (``metrics["test"]["n"]``: how many photos). Under
:data:`MIN_TEST_PHOTOS` an accuracy is uncertain by more than ±10 points (95%), so a useful model
cannot be told from a useless one: such a model is *untested*, and everything that shows its answers
(the Screen and Many-photos pages, both reports, the sidebar, ``clarityx predict``) says so.
"""
from __future__ import annotations

# Fewer test photos than this and a test accuracy is uncertain by more than ±10 points (95%).
MIN_TEST_PHOTOS = 100


def tested_photos(metrics: dict | None) -> int:
    """How many held-out photos the model was tested on (0 when it has no test results)."""
    test = (metrics or {}).get("test") or {}
    try:
        return max(0, int(test.get("n") or 0))
    except (TypeError, ValueError):
        return 0


def is_untested(metrics: dict | None) -> bool:
    """True when the model's test set was too small to measure it (or it has none)."""
    return tested_photos(metrics) < MIN_TEST_PHOTOS


def untested_note(metrics: dict | None) -> str | None:
    """The caveat said wherever an untested model answers; None for a model tested on enough photos."""
    n = tested_photos(metrics)
    if n >= MIN_TEST_PHOTOS:
        return None
    tested = f"was tested on only {n} photo{'s' if n != 1 else ''}" if n else "has no test results"
    return (f"Untested model: it {tested}, too few to tell how well it works (at least {MIN_TEST_PHOTOS} are "
            "needed). Treat its answers as untested, whatever percentage they show; prefer the bundled model.")
