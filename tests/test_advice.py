"""The advice agrees with the referable-DR flag and names only the chosen model's conditions (issue 19, item 2)."""
from app_pages.guidance import guidance
from clarityx.screening.grades import GRADE_CLASSES


def test_no_signs_lists_only_the_conditions_the_model_knows():
    meaning, _, urgency = guidance("normal", 0.9, ["normal", "cataract"])
    assert meaning == "No signs of cataract were recognised in this photo." and urgency == "routine"
    six = guidance("normal", 0.9)[0]
    assert "cataract, diabetic retinopathy, glaucoma, age-related macular degeneration or pathological myopia" in six


def test_a_flagged_photo_is_never_told_no_retinopathy_was_seen():
    meaning, action, urgency = guidance("normal", 0.9, ["normal", "cataract", "diabetic_retinopathy"], flagged=True)
    assert "No signs of cataract were recognised" in meaning and "referable diabetic retinopathy" in meaning
    assert urgency == "soon" and "eye doctor" in action
    meaning, _, urgency = guidance("dr_grade_0", 0.8, GRADE_CLASSES, flagged=True)
    assert "referable diabetic retinopathy" in meaning and urgency == "soon"
    assert guidance("diabetic_retinopathy", 0.8, flagged=True) == guidance("diabetic_retinopathy", 0.8)
