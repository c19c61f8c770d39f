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


def test_a_dr_grade_is_shown_as_a_grade_with_advice_that_grows_more_urgent():
    from app_pages.guidance import headline, label
    from clarityx.screening.grades import GRADE_CLASSES

    assert label("dr_grade_2") == "DR grade 2 of 4: moderate non-proliferative diabetic retinopathy"
    assert headline([("dr_grade_3", 0.61), ("dr_grade_2", 0.3)]).startswith("diabetic retinopathy **grade 3 of 4**")
    assert "most like **Glaucoma** (70%)" == headline([("glaucoma", 0.7)])
    urgency = [guidance(g, 0.9)[2] for g in GRADE_CLASSES]
    assert urgency == ["routine", "routine", "soon", "urgent", "urgent"]
    assert "grade 0" in guidance("dr_grade_0", 0.9)[0] and "does not look for other" in guidance("dr_grade_0", 0.9)[0]


def test_a_grade_model_flags_referable_dr_from_the_probability_of_grade_2_or_worse():
    probs = {"dr_grade_0": 0.5, "dr_grade_1": 0.2, "dr_grade_2": 0.15, "dr_grade_3": 0.1, "dr_grade_4": 0.05}
    note = referable_dr_note(probs, 0.3, 0.9)  # P(grade >= 2) = 0.30: flagged though grade 0 is on top
    assert note and "30%" in note
    assert referable_dr_note(probs, 0.31, 0.9) is None
