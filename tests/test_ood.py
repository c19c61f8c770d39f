import numpy as np

from clarityx.screening.gate import check_embedding
from clarityx.screening.ood import MahalanobisModel


def test_mahalanobis_separates_in_and_out_of_distribution(tmp_path):
    rng = np.random.default_rng(0)
    means = rng.normal(0, 5, (3, 16))
    labels = np.repeat(np.arange(3), 200)
    features = means[labels] + rng.normal(0, 1, (600, 16))
    model = MahalanobisModel.fit(features, labels)
    inside = model.distance(means[1] + rng.normal(0, 1, (50, 16)))
    outside = model.distance(rng.normal(0, 1, (50, 16)) + 30)
    assert inside.max() < outside.min()
    model.save(tmp_path / "o.npz")
    again = MahalanobisModel.load(tmp_path / "o.npz")
    assert np.allclose(again.distance(features[:5]), model.distance(features[:5]), rtol=1e-5)


def test_check_embedding_uses_the_cards_threshold(classifier):
    emb = np.zeros(512, np.float32)
    classifier.card.gate["settings"] = {"max_ood_distance": None}
    try:
        assert check_embedding(classifier, emb) is None
        far = np.full(512, 1e3, np.float32)
        classifier.card.gate["settings"] = {"max_ood_distance": 1.0}
        assert check_embedding(classifier, far).reason == "unfamiliar"
    finally:
        classifier.card.gate.pop("settings")
