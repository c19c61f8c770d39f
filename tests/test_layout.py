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
