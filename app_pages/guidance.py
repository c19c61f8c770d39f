"""Plain-language guidance for each finding (kept apart from the page code so it is testable)."""
from __future__ import annotations

from collections.abc import Sequence

from clarityx.screening.card import SIX_CLASSES
from clarityx.screening.grades import GRADE_NAMES, REFERABLE_FROM, grade_of, referable_score
from clarityx.screening.report import referable_flag

LABELS = {"normal": "Normal", "cataract": "Cataract", "diabetic_retinopathy": "Diabetic retinopathy",
          "glaucoma": "Glaucoma", "age_related_macular_degeneration": "Age-related macular degeneration",
          "pathological_myopia": "Pathological myopia"}


def label(name: str) -> str:
    """A class as a person reads it; a DR grade as a grade ("DR grade 2 of 4: moderate ...")."""
    grade = grade_of(name)
    if grade is not None:
        return f"DR grade {grade} of 4: {GRADE_NAMES[grade]}"
    return LABELS.get(name, name.replace("_", " ").capitalize())


def headline(ranked: list[tuple[str, float]]) -> str:
    """The answer in one line (Markdown): the top class, or for a DR-grade model the grade."""
    top, p = ranked[0]
    grade = grade_of(top)
    if grade is not None:
        return f"diabetic retinopathy **grade {grade} of 4** — {GRADE_NAMES[grade]} ({p:.0%})"
    return f"most like **{label(top)}** ({p:.0%})"


GUIDANCE = {
    "normal": (
        "No signs of {conditions} were recognised in this photo.",  # the chosen model's conditions only
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
    "age_related_macular_degeneration": (
        "The photo resembles those of eyes with age-related macular degeneration (wear of the macula, "
        "the centre of the retina that gives sharp central vision; a leading cause of sight loss after 50).",
        "See an eye doctor within the next few weeks. Go within a day or two if straight lines look wavy "
        "or bent, or a dark or blank patch has appeared in the centre of your vision: the wet form can be "
        "treated, and treatment works best early.",
        "soon",
    ),
    "pathological_myopia": (
        "The photo resembles those of eyes with pathological (degenerative) myopia: strong short-sightedness "
        "that stretches and thins the retina.",
        "See an eye doctor within the next few weeks for a full retinal examination, and then regularly. "
        "Go urgently (the same day) if you see a shower of new floaters, flashes of light, a curtain over "
        "part of your vision or sudden distortion: the thinned retina can tear or detach.",
        "soon",
    ),
}

_DR_HELP = ("Go urgently (within a day) if your vision has suddenly blurred, or you see new floaters or dark "
            "patches.")
GUIDANCE.update({
    "dr_grade_0": (
        "No diabetic retinopathy was recognised in this photo (grade 0 of 4). The model grades retinopathy "
        "only: it does not look for other eye conditions.",
        "This does not rule retinopathy out. If you have diabetes, keep your yearly diabetic eye examination. "
        + _DR_HELP,
        "routine"),
    "dr_grade_1": (
        "The photo resembles eyes with mild diabetic retinopathy (grade 1 of 4): small bulges in the "
        "retina's blood vessels, which do not usually affect sight yet.",
        "Keep your yearly diabetic eye examination and tell your diabetes care team: good control of blood "
        "sugar, blood pressure and cholesterol slows retinopathy. " + _DR_HELP,
        "routine"),
    "dr_grade_2": (
        "The photo resembles eyes with moderate diabetic retinopathy (grade 2 of 4): retinopathy that "
        "screening programmes refer to an eye doctor.",
        "See an eye doctor within the next few weeks, and tell your diabetes care team. " + _DR_HELP,
        "soon"),
    "dr_grade_3": (
        "The photo resembles eyes with severe diabetic retinopathy (grade 3 of 4): many damaged blood vessels, "
        "with a high risk of new, fragile vessels growing.",
        "See an eye doctor within the next two weeks, and tell your diabetes care team. " + _DR_HELP,
        "urgent"),
    "dr_grade_4": (
        "The photo resembles eyes with proliferative diabetic retinopathy (grade 4 of 4): new, fragile blood "
        "vessels that can bleed and threaten sight.",
        "See an eye doctor urgently, within days: treatment can save sight. Go the same day if your vision "
        "has suddenly changed.",
        "urgent"),
})

REFERABLE_DR = (
    "The model also flags possible **referable diabetic retinopathy** (moderate or worse) in this photo: "
    "its referable-retinopathy score ({p:.0%}) is above the level at which, in testing, it found {sens:.0%} of "
    "such eyes{false_alarms}. See an eye doctor within the next few weeks, and tell your diabetes care team."
)

BUT_FLAGGED = ("However, the model's score for referable diabetic retinopathy is above the level at which it flags "
               "it: see the note below.")
FLAGGED_ACTION = ("Because of that flag, see an eye doctor within the next few weeks and tell your diabetes care "
                  "team.")

UNCERTAIN = 0.5


def spoken_list(items: list[str], conjunction: str = "or") -> str:
    """``a, b or c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def conditions_known(classes: Sequence[str], without_dr: bool = False) -> list[str]:
    """The conditions a model looks for, as a person reads them ("normal" and DR grades are not conditions)."""
    return [label(c).lower() for c in classes if c != "normal" and grade_of(c) is None
            and not (without_dr and c == "diabetic_retinopathy")]


def guidance(top: str, probability: float, classes: Sequence[str] = SIX_CLASSES,
             flagged: bool = False) -> tuple[str, str, str]:
    """(what the finding means, what to do, urgency) for the top class of a model with ``classes``.

    ``flagged``: the referable-DR flag is raised for this photo (:func:`referable_dr_note`). The
    meaning then never says that no retinopathy was seen, and the urgency is at least "soon"."""
    meaning, action, urgency = GUIDANCE.get(
        top, ("The model's top finding is " + top.replace("_", " ") + ".",
              "Show this photo to an eye doctor.", "soon"))
    if top == "normal":
        others = conditions_known(classes, without_dr=flagged)
        meaning = (meaning.format(conditions=spoken_list(others)) if others
                   else "The photo resembles those of eyes the model called normal.")
    grade = grade_of(top)
    if flagged and top != "diabetic_retinopathy" and (grade is None or grade < REFERABLE_FROM):
        meaning = f"{meaning} {BUT_FLAGGED}"
        if urgency == "routine":
            action, urgency = f"{FLAGGED_ACTION} {action}", "soon"
    if probability < UNCERTAIN:
        meaning = (f"The model is unsure (its top answer has only {probability:.0%}). " + meaning)
        action = "Because the result is uncertain, have your eyes checked by an eye doctor. " + action
        urgency = "soon" if urgency == "routine" else urgency
    return meaning, action, urgency


def referable_dr_note(probabilities: dict[str, float], threshold: float | None,
                      sensitivity: float | None, specificity: float | None = None) -> str | None:
    """A flag for possible referable DR when the referable-DR score (P(DR), or P(grade >= 2) for a
    grade model) reaches the card's operating threshold, whatever the top answer is (a photo can look
    most like cataract and still show retinopathy). Says how often the flag was a false alarm in
    testing, so a flag is read for what it is worth."""
    if not referable_flag(probabilities, threshold):
        return None
    p = referable_score(probabilities)
    false_alarms = ("" if specificity is None else
                    f" — but it also flagged {1 - specificity:.0%} of eyes without it, so this is a prompt to "
                    "get checked, not a finding")
    return REFERABLE_DR.format(p=p, sens=sensitivity if sensitivity is not None else 0.9, false_alarms=false_alarms)


def weak_classes(metrics: dict, below: float = 0.6) -> list[tuple[str, float]]:
    """Classes the model often missed on its held-out test photos (recall under ``below``)."""
    per_class = metrics.get("test", {}).get("per_class", {})
    return [(c, m["recall"]) for c, m in per_class.items() if m["recall"] < below]


def weak_spot_notes(metrics: dict) -> list[str]:
    """The model's weak spots in a person's words, said once per visit (on the page and in the report)."""
    return [f"In testing, this model recognised only {recall:.0%} of photos with {label(name).lower()}: "
            "a low score for it does not rule it out." for name, recall in weak_classes(metrics)]
