import io

import numpy as np
import pytest
from PIL import Image

from clarityx.screening.errors import CorruptImage, ImageTooLarge, ImageTooSmall, NotAnImage
from clarityx.screening.imageio import find_images, load_image
from tests.conftest import synthetic_fundus


def encode(arr_or_img, fmt: str, **kw) -> bytes:
    img = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "BMP", "WEBP"])
def test_decodes_common_formats_to_rgb_uint8(fmt):
    src = synthetic_fundus(200, seed=1)
    out = load_image(encode(src, fmt))
    assert out.shape == (200, 200, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - src).mean() < 6  # lossy formats stay close


def test_exif_orientation_is_applied():
    src = np.zeros((200, 300, 3), np.uint8)
    src[:, :150] = 255  # left half white
    img = Image.fromarray(src)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = load_image(encode(img, "JPEG", exif=exif))
    assert out.shape == (300, 200, 3)
    assert out[:150].mean() > 200 and out[150:].mean() < 50  # white half now on top


def test_greyscale_palette_and_16bit_become_rgb():
    grey = (np.arange(200 * 200).reshape(200, 200) % 256).astype(np.uint8)
    out = load_image(encode(Image.fromarray(grey, "L"), "PNG"))
    assert out.shape == (200, 200, 3) and (out[..., 0] == grey).all()

    pal = Image.fromarray(synthetic_fundus(200)).convert("P")
    assert load_image(encode(pal, "PNG")).shape == (200, 200, 3)

    sixteen = (np.linspace(0, 65535, 200 * 200).reshape(200, 200)).astype(np.uint16)
    out16 = load_image(encode(Image.fromarray(sixteen), "PNG"))
    assert out16.dtype == np.uint8 and out16.max() == 255 and out16.min() == 0


def test_rgba_transparency_becomes_black():
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:100, :, 3] = 255  # top opaque, bottom transparent
    out = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out[:100].mean() > 190 and out[100:].max() == 0


def test_not_an_image_and_empty():
    with pytest.raises(NotAnImage, match="not an image"):
        load_image(b"hello, this is text, not a photo" * 10)
    with pytest.raises(NotAnImage, match="empty"):
        load_image(b"")


def test_truncated_jpeg_is_corrupt():
    data = encode(synthetic_fundus(300), "JPEG")
    with pytest.raises(CorruptImage):
        load_image(data[: len(data) // 2])


def test_limits():
    data = encode(synthetic_fundus(300), "PNG")
    with pytest.raises(ImageTooLarge, match="limit"):
        load_image(data, max_bytes=1000)
    with pytest.raises(ImageTooLarge, match="megapixels"):
        load_image(data, max_pixels=300 * 299)
    with pytest.raises(ImageTooSmall, match="at least 128"):
        load_image(encode(synthetic_fundus(100), "PNG"))


def test_decompression_bomb_is_refused():
    # A tiny file that declares a huge canvas: Pillow's own bomb guard or ours must refuse it.
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooLarge):
        load_image(bomb, max_pixels=10_000_000)


def test_paths_and_find_images(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(synthetic_fundus(200)).save(tmp_path / "a" / "x.png")
    (tmp_path / "a" / "notes.txt").write_text("x")
    assert load_image(tmp_path / "a" / "x.png").shape == (200, 200, 3)
    with pytest.raises(NotAnImage, match="no such file"):
        load_image(tmp_path / "missing.png")
    found = find_images([tmp_path, tmp_path / "a" / "notes.txt"])
    assert [p.name for p in found] == ["x.png", "notes.txt"]


@pytest.mark.parametrize("fmt", ["GIF", "PCX", "TGA", "ICO"])
def test_other_pillow_formats_are_refused_even_renamed(fmt, tmp_path):
    path = tmp_path / "photo.jpg"  # a renamed file must not reach another Pillow plugin
    path.write_bytes(encode(synthetic_fundus(200, seed=2), fmt))
    with pytest.raises(NotAnImage):
        load_image(path)


def test_16_bit_pixels_are_scaled_by_their_type_not_their_values():
    dim = np.full((200, 200), 100, np.uint16)  # a very dark 16-bit photo: every value under 256
    dim[50:150, 50:150] = 200
    out = load_image(encode(Image.fromarray(dim), "PNG"))
    assert out.max() == round(200 / 65535 * 255) == 1 and out.min() == 0  # stays dark, not stretched


def test_audit_refuses_other_formats_too(tmp_path):
    from clarityx.data.audit import read_file

    path = tmp_path / "x.png"
    path.write_bytes(encode(synthetic_fundus(200, seed=2), "GIF"))
    with pytest.raises(NotAnImage):
        read_file(path)


def test_a_large_jpeg_may_be_decoded_reduced_upright_and_within_the_limits():
    """``shrink_to``: libjpeg's DCT scaling (1/2, 1/4, 1/8), the short side kept at least ``shrink_to``,
    EXIF orientation still applied; other formats and smaller photos are read whole; the limits read the
    stored size."""
    photo = np.ascontiguousarray(np.repeat(np.repeat(synthetic_fundus(300), 10, axis=0), 8, axis=1))  # 2400 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # stored upright 3000×2400, to be viewed turned: 2400 rows × 3000 columns
    data = encode(photo, "JPEG", quality=90, exif=exif)
    full = load_image(data)
    assert full.shape == (2400, 3000, 3)
    assert load_image(data, shrink_to=1000).shape == (1200, 1500, 3)  # 1/2: 1/4 would leave 600 < 1,000
    assert load_image(data, shrink_to=500).shape == (600, 750, 3)     # 1/4
    assert load_image(data, shrink_to=250).shape == (300, 375, 3)     # 1/8, the most libjpeg does
    small = load_image(data, shrink_to=500).astype(np.float32)
    shrunk = np.asarray(Image.fromarray(full).resize((750, 600), Image.BOX), dtype=np.float32)
    assert np.abs(small - shrunk).mean() < 3  # the same photo, the same way up
    assert load_image(data, shrink_to=500, min_side=1000).shape == (1200, 1500, 3)  # never under min_side
    assert load_image(data, shrink_to=1300).shape == (2400, 3000, 3)  # 1/2 would be under 1,300: whole
    assert load_image(encode(photo, "PNG"), shrink_to=500).shape == (3000, 2400, 3)  # only a JPEG is scaled
    with pytest.raises(ImageTooLarge):
        load_image(data, shrink_to=500, max_pixels=3000 * 2400 - 1)
    with pytest.raises(CorruptImage):
        load_image(data[: len(data) // 2], shrink_to=500)
