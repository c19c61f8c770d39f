"""Plain-language guidance for each finding (kept apart from the page code so it is testable)."""
from __future__ import annotations

from collections.abc import Sequence

from clarityx.screening.classes import BY_KEY, CLASSES, DIABETIC_RETINOPATHY, GRADE_NAMES, NORMAL
from clarityx.screening.grades import REFERABLE_FROM, grade_of, referable_flag, referable_score
from clarityx.screening.limits import DEFAULT_GATE, GateSettings

LABELS = {key: c.label for key, c in BY_KEY.items()}


def label(name: str) -> str:
    """A class as a person reads it; a DR grade as a grade ("DR grade 2 of 4: moderate ...")."""
    return LABELS.get(name, name.replace("_", " ").capitalize())


def headline(ranked: list[tuple[str, float]]) -> str:
    """The answer in one line (Markdown): the top class, or for a DR-grade model the grade."""
    top, p = ranked[0]
    grade = grade_of(top)
    if grade is not None:
        return f"diabetic retinopathy **grade {grade} of 4** — {GRADE_NAMES[grade]} ({p:.0%})"
    return f"most like **{label(top)}** ({p:.0%})"


# (what the finding means, what to do, urgency) of every class, from the one table.
GUIDANCE = {key: (c.meaning, c.action, c.urgency) for key, c in BY_KEY.items()}

HAZY = ("**Hazy view.** The retina looks hazy in this photo, as it does through a clouded lens (a cataract is "
        "the most common cause). This is a reason to see an eye doctor, who can examine the lens and the retina "
        "behind it; retaking the photo will not get past a clouded lens.")
GRADES_IN_WORDS = ("no diabetic retinopathy", "mild", "moderate", "severe", "proliferative")

REFERABLE_DR = (
    "The model also flags possible **referable diabetic retinopathy** (moderate or worse) in this photo: "
    "its referable-retinopathy score ({p:.0%}) is above the level at which, in testing, it found {sens:.0%} of "
    "such eyes{false_alarms}. See an eye doctor within the next few weeks, and tell your diabetes care team."
)

BUT_FLAGGED = ("However, the model's score for referable diabetic retinopathy is above the level at which it flags "
               "it: see the note below.")
FLAGGED_ACTION = ("Because of that flag, see an eye doctor within the next few weeks and tell your diabetes care "
                  "team.")


def spoken_list(items: list[str], conjunction: str = "or") -> str:
    """``a, b or c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def conditions_known(classes: Sequence[str], without_dr: bool = False) -> list[str]:
    """The conditions a model looks for, as a person reads them ("normal" and DR grades are not conditions)."""
    return [label(c).lower() for c in classes if c != NORMAL and grade_of(c) is None
            and not (without_dr and c == DIABETIC_RETINOPATHY)]


def guidance(top: str, probability: float, classes: Sequence[str] = CLASSES,
             flagged: bool = False, settings: GateSettings = DEFAULT_GATE) -> tuple[str, str, str]:
    """(what the finding means, what to do, urgency) for the top class of a model with ``classes``.

    ``flagged``: the referable-DR flag is raised for this photo (:func:`referable_dr_note`). The
    meaning then never says that no retinopathy was seen, and the urgency is at least "soon".
    ``settings``: the model's (``ModelCard.gate_settings``): a top answer under ``settings.uncertain``
    is called uncertain."""
    meaning, action, urgency = GUIDANCE.get(
        top, ("The model's top finding is " + top.replace("_", " ") + ".",
              "Show this photo to an eye doctor.", "soon"))
    if top == NORMAL:
        others = conditions_known(classes, without_dr=flagged)
        meaning = (meaning.format(conditions=spoken_list(others)) if others
                   else "The photo resembles those of eyes the model called normal.")
    grade = grade_of(top)
    if flagged and top != DIABETIC_RETINOPATHY and (grade is None or grade < REFERABLE_FROM):
        meaning = f"{meaning} {BUT_FLAGGED}"
        if urgency == "routine":
            action, urgency = f"{FLAGGED_ACTION} {action}", "soon"
    if probability < settings.uncertain:
        meaning = (f"The model is unsure (its top answer has only {probability:.0%}). " + meaning)
        action = "Because the result is uncertain, have your eyes checked by an eye doctor. " + action
        urgency = "soon" if urgency == "routine" else urgency
    return meaning, action, urgency


def referable_dr_note(probabilities: dict[str, float], threshold: float | None,
                      sensitivity: float | None, specificity: float | None = None,
                      score: float | None = None) -> str | None:
    """A flag for possible referable DR when the referable-DR score (P(DR), or P(grade >= 2) for a
    grade model) reaches the card's operating threshold, whatever the top answer is (a photo can look
    most like cataract and still show retinopathy). Says how often the flag was a false alarm in
    testing, so a flag is read for what it is worth. ``score``: the result's referable score (a grade layer's
    P(grade >= 2)); without it, that of ``probabilities``."""
    if not referable_flag(probabilities, threshold, score):
        return None
    p = referable_score(probabilities) if score is None else score
    false_alarms = ("" if specificity is None else
                    f" — but it also flagged {1 - specificity:.0%} of eyes without it, so this is a prompt to "
                    "get checked, not a finding")
    return REFERABLE_DR.format(p=p, sens=sensitivity if sensitivity is not None else 0.9, false_alarms=false_alarms)


def weak_classes(metrics: dict, below: float = DEFAULT_GATE.weak_recall) -> list[tuple[str, float]]:
    """Classes the model often missed on its held-out test photos (recall under ``below``)."""
    per_class = metrics.get("test", {}).get("per_class", {})
    return [(c, m["recall"]) for c, m in per_class.items() if m["recall"] < below]


def weak_spot_notes(metrics: dict, below: float = DEFAULT_GATE.weak_recall) -> list[str]:
    """The model's weak spots in a person's words, said once per visit (on the page and in the report)."""
    return [f"In testing, this model recognised only {recall:.0%} of photos with {label(name).lower()}: "
            "a low score for it does not rule it out." for name, recall in weak_classes(metrics, below)]
