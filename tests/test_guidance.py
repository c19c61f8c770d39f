from app_pages.guidance import GUIDANCE, guidance, referable_dr_note, weak_classes


def test_every_class_says_what_to_do_and_uncertainty_raises_urgency():
    for cls in GUIDANCE:
        meaning, action, urgency = guidance(cls, 0.9)
        assert meaning and ("eye doctor" in action.lower() or "examination" in action.lower())
    _, action, urgency = guidance("normal", 0.4)
    assert "unsure" in guidance("normal", 0.4)[0] and urgency == "soon" and "eye doctor" in action
    assert guidance("glaucoma", 0.9)[2] == "soon" and "emergency" in guidance("glaucoma", 0.9)[1]
    assert "eye doctor" in guidance("something_new", 0.9)[1]


def test_weak_classes_from_card_metrics():
    metrics = {"test": {"per_class": {"normal": {"recall": 0.8}, "diabetic_retinopathy": {"recall": 0.33}}}}
    assert weak_classes(metrics) == [("diabetic_retinopathy", 0.33)]
    assert weak_classes({}) == []


def test_every_class_of_the_bundled_model_has_guidance():
    from clarityx.screening.card import ModelCard, card_path
    from clarityx.screening.engine import default_model_path

    assert set(ModelCard.load(card_path(default_model_path())).classes) <= set(GUIDANCE)


def test_referable_dr_is_flagged_from_the_threshold_whatever_the_top_class():
    probs = {"cataract": 0.6, "diabetic_retinopathy": 0.3, "normal": 0.1}
    assert "referable diabetic retinopathy" in referable_dr_note(probs, 0.25, 0.91)
    assert "91%" in referable_dr_note(probs, 0.25, 0.91)
    assert referable_dr_note(probs, 0.35, 0.91) is None and referable_dr_note(probs, None, None) is None
    assert "flagged 72% of eyes without it" in referable_dr_note(probs, 0.25, 0.91, 0.28)
