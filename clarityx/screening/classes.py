"""Every class a model can answer with, in one table: adding a class is one entry here.

Each :class:`ModelClass` carries what the rest of ClarityX needs to know about it: its key (the model
output's name, in cards, the CLI's JSON and the history), the label a person reads, what the finding
means and what to do about it (the app and the report), how urgent that is, and the ODIR-5K per-eye
keywords that label a photo with it (:func:`clarityx.data.datasets.odir_eye`). The bundled model's
conditions are :data:`CONDITIONS`, in its output order; a DR-grade model's outputs are :data:`GRADES`
(``train.py --task dr-grade``; :mod:`clarityx.screening.grades`).

Run-time layer: no TensorFlow, no imports from the rest of ClarityX.
"""
from __future__ import annotations

from dataclasses import dataclass

URGENCIES = ("routine", "soon", "urgent")


@dataclass(frozen=True)
class ModelClass:
    key: str       # the model output's name
    label: str     # as a person reads it
    meaning: str   # what the finding means ("normal": ``{conditions}`` is the model's other conditions)
    action: str    # what to do
    urgency: str   # one of URGENCIES
    # ODIR-5K per-eye keywords that label an eye with this class, each with the DR grade it states (or None)
    keywords: tuple[tuple[str, int | None], ...] = ()

    def __post_init__(self) -> None:
        if self.urgency not in URGENCIES:
            raise ValueError(f"{self.key}: urgency must be one of {URGENCIES}, not {self.urgency!r}")


NORMAL = "normal"
CATARACT = "cataract"
DIABETIC_RETINOPATHY = "diabetic_retinopathy"
GLAUCOMA = "glaucoma"
AGE_RELATED_MACULAR_DEGENERATION = "age_related_macular_degeneration"
PATHOLOGICAL_MYOPIA = "pathological_myopia"

CONDITIONS: tuple[ModelClass, ...] = (
    ModelClass(
        NORMAL, "Normal",
        "No signs of {conditions} were recognised in this photo.",  # the chosen model's conditions only
        "This does not rule eye disease out. Keep up regular eye examinations: every 1–2 years, "
        "and every year if you have diabetes, high blood pressure or a family history of glaucoma.",
        "routine",
        keywords=(("normal fundus", 0),)),
    ModelClass(
        CATARACT, "Cataract",
        "The photo resembles those of eyes with a cataract (a clouded lens, which makes the view of "
        "the retina hazy).",
        "Book an appointment with an eye doctor (optometrist or ophthalmologist) in the coming weeks. "
        "Cataracts are common and treatable; see someone sooner if your sight is getting worse quickly.",
        "soon",
        keywords=(("cataract", None),)),
    ModelClass(
        DIABETIC_RETINOPATHY, "Diabetic retinopathy",
        "The photo resembles those of eyes with diabetic retinopathy (damage to the retina's blood "
        "vessels caused by diabetes).",
        "See an eye doctor within the next few weeks, and tell your diabetes care team. Go urgently "
        "(within a day) if your vision has suddenly blurred, or you see new floaters or dark patches.",
        "soon",
        keywords=(("mild nonproliferative retinopathy", 1), ("moderate non proliferative retinopathy", 2),
                  ("severe nonproliferative retinopathy", 3), ("proliferative diabetic retinopathy", 4),
                  ("severe proliferative diabetic retinopathy", 4), ("diabetic retinopathy", None))),
    ModelClass(
        GLAUCOMA, "Glaucoma",
        "The photo resembles those of eyes with glaucoma (damage to the optic nerve, often with no "
        "symptoms until late).",
        "See an eye doctor within the next few weeks for an eye-pressure and visual-field test. Go to "
        "an emergency service at once if you have a painful red eye, haloes around lights, headache "
        "or nausea.",
        "soon",
        keywords=(("glaucoma", None),)),
    ModelClass(
        AGE_RELATED_MACULAR_DEGENERATION, "Age-related macular degeneration",
        "The photo resembles those of eyes with age-related macular degeneration (wear of the macula, "
        "the centre of the retina that gives sharp central vision; a leading cause of sight loss after 50).",
        "See an eye doctor within the next few weeks. Go within a day or two if straight lines look wavy "
        "or bent, or a dark or blank patch has appeared in the centre of your vision: the wet form can be "
        "treated, and treatment works best early.",
        "soon",
        keywords=(("dry age-related macular degeneration", None), ("wet age-related macular degeneration", None),
                  ("age-related macular degeneration", None))),
    ModelClass(
        PATHOLOGICAL_MYOPIA, "Pathological myopia",
        "The photo resembles those of eyes with pathological (degenerative) myopia: strong short-sightedness "
        "that stretches and thins the retina.",
        "See an eye doctor within the next few weeks for a full retinal examination, and then regularly. "
        "Go urgently (the same day) if you see a shower of new floaters, flashes of light, a curtain over "
        "part of your vision or sudden distortion: the thinned retina can tear or detach.",
        "soon",
        keywords=(("pathological myopia", None), ("myopia retinopathy", None), ("myopic maculopathy", None))),
)

CLASSES = tuple(c.key for c in CONDITIONS)  # the bundled model's conditions, in its output order
# ODIR-5K keywords about the photo, not the eye: they label nothing.
PHOTO_QUALITY_KEYWORDS = ("lens dust", "low image quality")
# Conditions no model here recognises (cards and the app say so).
UNRECOGNISED = "hypertensive retinopathy, vein occlusion, epiretinal membrane, retinal detachment, tumours"

# A DR-grade model: one output per grade of the international scale (EyePACS, APTOS, ODIR-5K's keywords).
GRADE_PREFIX = "dr_grade_"
GRADE_NAMES = ("no diabetic retinopathy", "mild non-proliferative diabetic retinopathy",
               "moderate non-proliferative diabetic retinopathy",
               "severe non-proliferative diabetic retinopathy", "proliferative diabetic retinopathy")
_DR_HELP = ("Go urgently (within a day) if your vision has suddenly blurred, or you see new floaters or dark "
            "patches.")
_GRADE_ADVICE = (
    ("No diabetic retinopathy was recognised in this photo (grade 0 of 4). The model grades retinopathy "
     "only: it does not look for other eye conditions.",
     "This does not rule retinopathy out. If you have diabetes, keep your yearly diabetic eye examination. "
     + _DR_HELP,
     "routine"),
    ("The photo resembles eyes with mild diabetic retinopathy (grade 1 of 4): small bulges in the "
     "retina's blood vessels, which do not usually affect sight yet.",
     "Keep your yearly diabetic eye examination and tell your diabetes care team: good control of blood "
     "sugar, blood pressure and cholesterol slows retinopathy. " + _DR_HELP,
     "routine"),
    ("The photo resembles eyes with moderate diabetic retinopathy (grade 2 of 4): retinopathy that "
     "screening programmes refer to an eye doctor.",
     "See an eye doctor within the next few weeks, and tell your diabetes care team. " + _DR_HELP,
     "soon"),
    ("The photo resembles eyes with severe diabetic retinopathy (grade 3 of 4): many damaged blood vessels, "
     "with a high risk of new, fragile vessels growing.",
     "See an eye doctor within the next two weeks, and tell your diabetes care team. " + _DR_HELP,
     "urgent"),
    ("The photo resembles eyes with proliferative diabetic retinopathy (grade 4 of 4): new, fragile blood "
     "vessels that can bleed and threaten sight.",
     "See an eye doctor urgently, within days: treatment can save sight. Go the same day if your vision "
     "has suddenly changed.",
     "urgent"),
)
GRADES: tuple[ModelClass, ...] = tuple(
    ModelClass(f"{GRADE_PREFIX}{g}", f"DR grade {g} of 4: {name}", meaning, action, urgency)
    for g, (name, (meaning, action, urgency)) in enumerate(zip(GRADE_NAMES, _GRADE_ADVICE)))

BY_KEY: dict[str, ModelClass] = {c.key: c for c in CONDITIONS + GRADES}


def odir_keywords() -> dict[str, tuple[str | None, int | None]]:
    """ODIR-5K per-eye keyword → (class, DR grade), from the table; photo-quality keywords → (None, None)."""
    table = {word: (c.key, grade) for c in CONDITIONS for word, grade in c.keywords}
    return {**table, **{word: (None, None) for word in PHOTO_QUALITY_KEYWORDS}}
