"""The package's layers: what screening needs at run time never reaches TensorFlow.

    clarityx.screening   image input, prepare, gate, OOD, card, ONNX engine, pipeline (ground floor)
    clarityx.data        datasets, audit, split, augmentation, negatives        → screening
    clarityx.model       backbones, weights, build, Keras engine, export        → screening
    clarityx.training    steps, metrics, evaluation                             → data, model, screening
    clarityx.cli / loader / app                                                 → any
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clarityx"
ALLOWED = {  # layer → layers it may import
    "screening": {"screening"},
    "data": {"data", "screening"},
    "model": {"model", "screening"},
    "training": {"training", "data", "model", "screening"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every clarityx module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clarityx"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if (PACKAGE / Path(*node.module.split(".")[1:]) / f"{a.name}.py").exists())
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("clarityx"))
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, targets in graph().items():
        layer = module.split(".")[1] if module.count(".") >= 1 else None
        if layer not in ALLOWED:
            continue
        for target in targets:
            target_layer = target.split(".")[1] if target.count(".") >= 1 else "top"
            if target_layer not in ALLOWED[layer]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in g.get(node, ()):
            if nxt not in g:
                continue
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " → ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in g:
        if module not in state:
            visit(module, [module])


SCREEN_IN_A_FRESH_PROCESS = """
import json, sys
from clarityx.cli import main
rc = main(["predict", sys.argv[1], "--json", "--heatmap-dir", sys.argv[2]])
heavy = sorted(m for m in ("tensorflow", "keras", "sklearn", "torch") if m in sys.modules)
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


def test_screening_with_heat_maps_never_imports_tensorflow(tmp_path):
    """The bundled model, through its ONNX graph: a whole `clarityx predict --heatmap-dir` run."""
    from PIL import Image

    from clarityx.screening.engine import DEFAULT_MODEL, onnx_path
    from tests.conftest import synthetic_fundus

    if not onnx_path(DEFAULT_MODEL).is_file():
        pytest.skip("no bundled ONNX graph")
    for i in range(3):
        Image.fromarray(synthetic_fundus(320, seed=70 + i)).save(tmp_path / f"eye{i}.png")
    out = subprocess.run([sys.executable, "-c", SCREEN_IN_A_FRESH_PROCESS, str(tmp_path), str(tmp_path / "h")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stderr
    assert json.loads(lines[-1]) == {"rc": 0, "heavy": []}
    results = [json.loads(x) for x in lines[:-1]]
    assert len(results) == 3 and all(r["status"] in ("ok", "rejected") for r in results)
    assert len(list((tmp_path / "h").glob("*.png"))) == sum(r["status"] == "ok" for r in results)


HEAVY = ("tensorflow", "keras", "sklearn", "tqdm", "torch")  # the `train` extra: absent from a run-time install


def top_level_imports(path: Path) -> set[str]:
    """Modules a file imports when it is imported (not those imported inside functions)."""
    found: set[str] = set()

    def walk(body) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ClassDef):
                walk(node.body)
            for field in ("body", "orelse", "finalbody", "handlers"):
                if not isinstance(node, ast.ClassDef) and isinstance(getattr(node, field, None), list):
                    walk(getattr(node, field))

    walk(ast.parse(path.read_text()).body)
    return found


def run_time_modules() -> list[str]:
    """What the app and `clarityx predict` import: the screening layer, cli, loader, and whatever
    app.py and the pages import at their top."""
    modules = {module_name(p) for p in (PACKAGE / "screening").glob("*.py")} | {"clarityx.cli", "clarityx.loader"}
    for page in [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py"))]:
        modules |= {m for m in top_level_imports(page) if m.startswith(("clarityx", "app_pages"))}
    return sorted(modules)


def test_app_files_import_no_training_stack_at_their_top():
    wrong = [f"{page.relative_to(ROOT)} imports {m}"
             for page in [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py")),
                          *sorted((PACKAGE / "screening").glob("*.py")), PACKAGE / "cli.py", PACKAGE / "loader.py"]
             for m in top_level_imports(page) if m.split(".")[0] in HEAVY]
    assert wrong == []


IMPORT_EVERYTHING_THE_APP_NEEDS = """
import importlib, json, sys
for name in sys.argv[1:]:
    if not name.startswith("app_pages."):  # the pages run Streamlit calls at import: checked above by their imports
        importlib.import_module(name)
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def test_run_time_modules_never_import_the_training_stack():
    """A run-time install (`pip install .`, no extras) has no TensorFlow, Keras, scikit-learn or tqdm:
    nothing the app or `clarityx predict` imports may need them at import time."""
    out = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING_THE_APP_NEEDS.format(heavy=HEAVY),
                          *run_time_modules()], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
