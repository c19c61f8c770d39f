"""Fuzzing the image input path: whatever bytes arrive, the only outcomes are a result or a typed refusal.

Random bytes, and real JPEG / PNG / TIFF / WebP / BMP files (8- and 16-bit, palette, alpha) with
bytes flipped, inserted, deleted and truncated, go through what an upload meets: ``load_image``
→ the gate's image test → ``prepare`` (every contrast method). Anything but an
:class:`~clarityx.screening.errors.ImageRejected` or a finished result fails, and so does an example
slower than the deadline (a hang). Decoded sizes are capped before decoding, so memory is bounded.

CI runs a bounded, derandomised pass (same examples every run). A longer, random one:

    CLARITYX_FUZZ_EXAMPLES=20000 CLARITYX_FUZZ_RANDOM=1 python -m pytest tests/test_fuzz.py -q \
        --hypothesis-show-statistics
"""
import io
import os
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clarityx.screening.errors import ImageRejected
from clarityx.screening.gate import check_image
from clarityx.screening.imageio import MAX_PIXELS, load_image
from clarityx.screening.preprocess import CONTRASTS, prepare

EXAMPLES = int(os.environ.get("CLARITYX_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=5), database=None,
                derandomize=not os.environ.get("CLARITYX_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def seed_files() -> dict[str, bytes]:
    """Small real files of every accepted format and the pixel layouts a person's files come in."""
    import skimage.data
    from PIL import Image

    rgb = np.asarray(Image.fromarray(skimage.data.retina()).resize((160, 160)))
    grey16 = (rgb[..., 1].astype(np.uint16) * 257)
    files = {}
    for name, image, fmt, options in [
        ("jpeg", Image.fromarray(rgb), "JPEG", {"quality": 80}),
        ("progressive.jpeg", Image.fromarray(rgb), "JPEG", {"progressive": True}),
        ("png", Image.fromarray(rgb), "PNG", {}),
        ("rgba.png", Image.fromarray(rgb).convert("RGBA"), "PNG", {}),
        ("palette.png", Image.fromarray(rgb).convert("P"), "PNG", {}),
        ("grey16.png", Image.fromarray(grey16), "PNG", {}),
        ("tiff", Image.fromarray(rgb), "TIFF", {"compression": "tiff_deflate"}),
        ("grey16.tiff", Image.fromarray(grey16), "TIFF", {}),
        ("webp", Image.fromarray(rgb), "WEBP", {"quality": 70}),
        ("bmp", Image.fromarray(rgb), "BMP", {}),
    ]:
        buf = io.BytesIO()
        image.save(buf, fmt, **options)
        files[name] = buf.getvalue()
    return files


SEEDS = seed_files()


def screen_untrusted(data: bytes) -> str:
    """What an upload goes through before the model: returns 'refused' or 'prepared'."""
    try:  # libjpeg's scaled decoder too, as the pipeline reads a large JPEG (these 160 px ones at 1/4)
        small = load_image(data, shrink_to=40, min_side=32)
        assert small.dtype == np.uint8 and small.ndim == 3 and small.shape[2] == 3
    except ImageRejected:
        pass
    try:
        rgb = load_image(data)
    except ImageRejected:
        return "refused"
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS
    if check_image(rgb) is not None:
        return "refused"
    for contrast in CONTRASTS:
        pixels = prepare(rgb, 64, contrast)
        assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    return "prepared"


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
        else:  # a header field set to an extreme value
            data[at:at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]))
    return bytes(data)


@FUZZ
@given(data=mutated())
def test_mutated_real_files_give_a_result_or_a_typed_refusal(data):
    outcome = screen_untrusted(data)
    event(outcome)  # --hypothesis-show-statistics: how many mutants still decoded
    assert outcome in ("refused", "prepared")


@FUZZ
@given(data=st.one_of(st.binary(max_size=4096),
                      st.builds(lambda magic, rest: magic + rest,
                                st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*",
                                                 b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM"]),
                                st.binary(max_size=2048))))
def test_random_bytes_give_a_result_or_a_typed_refusal(data):
    assert screen_untrusted(data) in ("refused", "prepared")


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_file_is_read(name):
    """The seeds themselves decode (so the mutations start from files that work)."""
    assert load_image(SEEDS[name]).shape[:2] == (160, 160)
