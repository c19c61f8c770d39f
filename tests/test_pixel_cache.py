"""The decoded-pixel cache of training: keyed on what the pixels depend on, written atomically, bounded."""
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clarityx.data.datasets import Sample
from clarityx.training import steps as T
from tests.conftest import synthetic_fundus

SIZE = 32


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / "photos" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(synthetic_fundus(160, seed=400 + i)).save(path)
        paths.append(path)
    return [Sample(p, "normal") for p in paths]


def caches(folder):
    return sorted(folder.glob("pixels-*.npy"))


def test_a_replaced_photo_is_decoded_again(tmp_path, photos):
    first = T.load_pixels(photos, SIZE, tmp_path / "cache", threads=1)
    Image.fromarray(synthetic_fundus(160, seed=999)).save(photos[0].path)  # same name, new photo
    os.utime(photos[0].path, ns=(1, 1))  # even with an old modification time (the size differs)
    again = T.load_pixels(photos, SIZE, tmp_path / "cache", threads=1)
    assert not np.array_equal(first[0], again[0]) and np.array_equal(first[1:], again[1:])


def test_the_key_follows_content_not_dates(photos):
    key = T.pixel_cache_key(photos, SIZE, "none")
    for photo in photos:  # the same photos copied or mounted again: new dates, same key
        os.utime(photo.path, ns=(10**18, 10**18))
    assert T.pixel_cache_key(photos, SIZE, "none") == key
    data = bytearray(Path(photos[0].path).read_bytes())
    data[-3] ^= 0xFF  # one byte changed, same size and date
    st = os.stat(photos[0].path)
    Path(photos[0].path).write_bytes(bytes(data))
    os.utime(photos[0].path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert T.pixel_cache_key(photos, SIZE, "none") != key


def test_the_key_names_the_decoders_versions(photos, monkeypatch):
    import cv2
    import PIL

    key = T.pixel_cache_key(photos, SIZE, "none")
    monkeypatch.setattr(cv2, "__version__", "0.0.1")
    assert T.pixel_cache_key(photos, SIZE, "none") != key
    monkeypatch.undo()
    monkeypatch.setattr(PIL, "__version__", "0.0.1")
    assert T.pixel_cache_key(photos, SIZE, "none") != key


def test_a_truncated_cache_is_decoded_again_not_loaded(tmp_path, photos):
    expected = T.load_pixels(photos, SIZE, tmp_path / "cache", threads=1)
    (cache,) = caches(tmp_path / "cache")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])  # as a run stopped mid-save would have
    assert np.array_equal(T.load_pixels(photos, SIZE, tmp_path / "cache", threads=1), expected)
    assert np.array_equal(np.load(cache), expected)  # and replaced by a whole one


def test_a_save_that_fails_leaves_no_cache_file(tmp_path, photos, monkeypatch):
    def half_then_fail(file, array, **kwargs):
        file.write(b"\x93NUMPY half a header")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(T.np, "save", half_then_fail)
    with pytest.raises(OSError):
        T.load_pixels(photos, SIZE, tmp_path / "cache", threads=1)
    assert list((tmp_path / "cache").iterdir()) == []  # neither the cache nor a temporary file


def test_the_cache_folder_is_bounded_least_recently_used_first(tmp_path, photos):
    folder = tmp_path / "cache"
    a, b, c = photos
    sets = {"ab": [a, b], "bc": [b, c], "ca": [c, a], "ba": [b, a]}  # four caches of one size
    one_cache = 2 * SIZE * SIZE * 3 + 128
    names = {}
    for n, name in enumerate(("ab", "bc", "ca")):
        T.load_pixels(sets[name], SIZE, folder, threads=1, cache_limit=10 * one_cache)
        (names[name],) = set(caches(folder)) - set(names.values())
        os.utime(names[name], (1000 + n, 1000 + n))  # an unambiguous order of use
    T.load_pixels(sets["ab"], SIZE, folder, threads=1, cache_limit=10 * one_cache)  # a hit: now the most recent
    T.load_pixels(sets["ba"], SIZE, folder, threads=1, cache_limit=int(2.5 * one_cache))
    (names["ba"],) = set(caches(folder)) - set(names.values())
    assert caches(folder) == sorted([names["ab"], names["ba"]])  # the two least recently used went
