"""Plain-language guidance for each finding (kept apart from the page code so it is testable)."""
from __future__ import annotations

GUIDANCE = {
    "normal": (
        "No signs of cataract, diabetic retinopathy or glaucoma were recognised in this photo.",
        "This does not rule eye disease out. Keep up regular eye examinations: every 1–2 years, "
        "and every year if you have diabetes, high blood pressure or a family history of glaucoma.",
        "routine",
    ),
    "cataract": (
        "The photo resembles those of eyes with a cataract (a clouded lens, which makes the view of "
        "the retina hazy).",
        "Book an appointment with an eye doctor (optometrist or ophthalmologist) in the coming weeks. "
        "Cataracts are common and treatable; see someone sooner if your sight is getting worse quickly.",
        "soon",
    ),
    "diabetic_retinopathy": (
        "The photo resembles those of eyes with diabetic retinopathy (damage to the retina's blood "
        "vessels caused by diabetes).",
        "See an eye doctor within the next few weeks, and tell your diabetes care team. Go urgently "
        "(within a day) if your vision has suddenly blurred, or you see new floaters or dark patches.",
        "soon",
    ),
    "glaucoma": (
        "The photo resembles those of eyes with glaucoma (damage to the optic nerve, often with no "
        "symptoms until late).",
        "See an eye doctor within the next few weeks for an eye-pressure and visual-field test. Go to "
        "an emergency service at once if you have a painful red eye, haloes around lights, headache "
        "or nausea.",
        "soon",
    ),
}

UNCERTAIN = 0.5


def guidance(top: str, probability: float) -> tuple[str, str, str]:
    """(what the finding means, what to do, urgency) for the top class."""
    meaning, action, urgency = GUIDANCE.get(
        top, ("The model's top finding is " + top.replace("_", " ") + ".",
              "Show this photo to an eye doctor.", "soon"))
    if probability < UNCERTAIN:
        meaning = (f"The model is unsure (its top answer has only {probability:.0%}). " + meaning)
        action = "Because the result is uncertain, have your eyes checked by an eye doctor. " + action
        urgency = "soon" if urgency == "routine" else urgency
    return meaning, action, urgency


def weak_classes(metrics: dict, below: float = 0.6) -> list[tuple[str, float]]:
    """Classes the model often missed on its held-out test photos (recall under ``below``)."""
    per_class = metrics.get("test", {}).get("per_class", {})
    return [(c, m["recall"]) for c, m in per_class.items() if m["recall"] < below]
