import cv2
import numpy as np
import pytest

from clarityx.screening.preprocess import CONTRASTS, crop_to_fov, fov_box, prepare


def off_centre_disc() -> np.ndarray:
    img = np.zeros((300, 500, 3), np.uint8)
    cv2.circle(img, (320, 150), 100, (180, 80, 40), -1)
    return img


def test_fov_box_finds_the_disc():
    box = fov_box(off_centre_disc())
    assert abs(box.left - 220) <= 2 and abs(box.right - 421) <= 2
    assert abs(box.top - 50) <= 2 and abs(box.bottom - 251) <= 2


def test_crop_is_square_and_centred():
    crop = crop_to_fov(off_centre_disc())
    assert crop.shape[0] == crop.shape[1] == pytest.approx(201, abs=2)
    mask = crop.max(axis=2) > 20
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() - crop.shape[1] / 2) < 3 and abs(ys.mean() - crop.shape[0] / 2) < 3


def test_prepare_output_and_blank_image():
    out = prepare(off_centre_disc(), 128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert prepare(np.zeros((200, 300, 3), np.uint8), 64).shape == (64, 64, 3)  # no FOV: whole image


def test_prepare_rejects_wrong_arrays():
    with pytest.raises(ValueError):
        prepare(np.zeros((100, 100), np.uint8), 64)
    with pytest.raises(ValueError):
        prepare(np.zeros((100, 100, 3), np.float32), 64)


def test_camera_normalisations_keep_the_contract():
    from tests.conftest import synthetic_fundus

    photo = synthetic_fundus(300, seed=4)
    for contrast in CONTRASTS:
        out = prepare(photo, 96, contrast)
        assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    flat = np.zeros((200, 200, 3), np.uint8)
    cv2.circle(flat, (100, 100), 90, (180, 90, 40), -1)
    ben = prepare(flat, 128, "ben_graham")
    assert abs(int(ben[64, 64, 0]) - 128) <= 2 and abs(int(ben[64, 64, 2]) - 128) <= 2  # colour cast removed
    assert (ben[0, 0] == 0).all()  # outside the field of view stays black
    with pytest.raises(ValueError, match="contrast"):
        prepare(photo, 96, "sharpen")
