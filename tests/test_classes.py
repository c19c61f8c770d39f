"""The classes come from one table (clarityx.screening.classes): adding a class is one edit."""
import json
import subprocess
import sys
from pathlib import Path

from app_pages.guidance import GUIDANCE, LABELS, label
from clarityx.data.datasets import ODIR_KEYWORDS, odir_eye
from clarityx.screening.classes import BY_KEY, CLASSES, CONDITIONS, GRADES, ModelClass
from clarityx.screening.grades import GRADE_CLASSES

ROOT = Path(__file__).resolve().parent.parent


def test_labels_guidance_and_keywords_are_the_tables():
    assert CLASSES == ("normal", "cataract", "diabetic_retinopathy", "glaucoma", "age_related_macular_degeneration",
                       "pathological_myopia")
    assert GRADE_CLASSES == tuple(c.key for c in GRADES) == tuple(f"dr_grade_{g}" for g in range(5))
    assert set(LABELS) == set(GUIDANCE) == set(BY_KEY)
    assert all(label(c.key) == c.label and GUIDANCE[c.key] == (c.meaning, c.action, c.urgency)
               for c in CONDITIONS + GRADES)
    assert {word: cls for word, (cls, _) in ODIR_KEYWORDS.items() if cls} == {
        word: c.key for c in CONDITIONS for word, _ in c.keywords}
    assert odir_eye("myopic maculopathy") == ("pathological_myopia", 0, ("pathological_myopia",))


def test_an_urgency_outside_the_scale_is_refused():
    import pytest

    with pytest.raises(ValueError, match="urgency"):
        ModelClass("x", "X", "m", "a", "whenever")


# One entry added to the table, nothing else edited: every place that knows the classes knows the new one.
ADD_ONE_CLASS = r"""
import importlib.util, json, sys
import clarityx.screening  # the package, so that the edited module can take its place
path = "clarityx/screening/classes.py"
source = open(path).read()
entry = '''    ModelClass(
        "retinal_vein_occlusion", "Retinal vein occlusion",
        "The photo resembles those of eyes with a blocked retinal vein.",
        "See an eye doctor within days.",
        "urgent",
        keywords=(("branch retinal vein occlusion", None),)),
)

CLASSES = '''
assert source.count("\n)\n\nCLASSES = ") == 1
source = source.replace("\n)\n\nCLASSES = ", "\n" + entry)
spec = importlib.util.spec_from_loader("clarityx.screening.classes", loader=None, origin=path)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
exec(compile(source, path, "exec"), module.__dict__)

from app_pages.guidance import GUIDANCE, guidance, label
from clarityx.data.datasets import CLASSES, odir_eye
from clarityx.screening.card import default_limitations
print(json.dumps({"classes": list(CLASSES), "label": label("retinal_vein_occlusion"),
                  "guidance": guidance("retinal_vein_occlusion", 0.9),
                  "in_guidance": "retinal_vein_occlusion" in GUIDANCE,
                  "normal": guidance("normal", 0.9)[0], "odir": odir_eye("branch retinal vein occlusion"),
                  "limitations": default_limitations(CLASSES)[1]}))
"""


def test_a_class_added_to_the_table_reaches_labels_guidance_keywords_and_cards():
    out = subprocess.run([sys.executable, "-c", ADD_ONE_CLASS], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["classes"][-1] == "retinal_vein_occlusion" and len(got["classes"]) == 7
    assert got["label"] == "Retinal vein occlusion" and got["in_guidance"]
    assert got["guidance"] == ["The photo resembles those of eyes with a blocked retinal vein.",
                               "See an eye doctor within days.", "urgent"]
    assert "pathological myopia or retinal vein occlusion were recognised" in got["normal"]
    assert got["odir"] == ["retinal_vein_occlusion", 0, ["retinal_vein_occlusion"]]
    assert got["limitations"].startswith("Knows 7 classes (") and "retinal vein occlusion)" in got["limitations"]
