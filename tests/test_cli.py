import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from clarityx.cli import main
from tests.conftest import synthetic_fundus


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_predict_json_mixed_inputs(tiny_model, tmp_path, capsys):
    good = tmp_path / "imgs"
    good.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_fundus(300, seed=i)).save(good / f"eye{i}.jpg")
    (good / "notes.jpg").write_text("this is not an image")
    data = (good / "eye0.jpg").read_bytes()
    (good / "truncated.jpg").write_bytes(data[: len(data) // 3])
    heat = tmp_path / "heat"

    code, out, _ = run_cli(["predict", str(good), "--model", str(tiny_model), "--json",
                            "--heatmap-dir", str(heat), "--batch-size", "2"], capsys)
    assert code == 0
    lines = [json.loads(line) for line in out.strip().splitlines()]
    by_name = {r["path"].split("/")[-1]: r for r in lines}
    assert len(lines) == 5 and set(by_name) == {"eye0.jpg", "eye1.jpg", "eye2.jpg", "notes.jpg", "truncated.jpg"}
    for r in lines:
        assert set(r) >= {"path", "status", "top", "grade", "probabilities", "message", "referable",
                          "referable_threshold", "untested", "heatmap"}
        assert r["grade"] is None  # a conditions model gives no DR grade
    for name in ("eye0.jpg", "eye1.jpg", "eye2.jpg"):
        r = by_name[name]
        assert r["status"] == "ok" and r["message"] is None
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4
        assert r["top"] == max(r["probabilities"], key=r["probabilities"].get)
        assert (heat / f"{name[:-4]}.{r['top']}.gradcam.png").is_file()  # says which condition it shows
        assert r["heatmap"] == str(heat / f"{name[:-4]}.{r['top']}.gradcam.png")  # the row names its heat map
    for name in ("notes.jpg", "truncated.jpg"):
        r = by_name[name]
        assert r["status"] == "rejected" and r["top"] is None and r["probabilities"] is None and r["message"]


def test_predict_without_model_exits_nonzero_with_advice(tmp_path, capsys):
    Image.fromarray(synthetic_fundus(300)).save(tmp_path / "a.jpg")
    code, out, err = run_cli(["predict", str(tmp_path / "a.jpg"), "--model", str(tmp_path / "none.keras")], capsys)
    assert code == 2 and out == "" and "No trained model" in err and "train.py" in err


def test_python_m_clarityx_runs(tiny_model, fundus_jpeg):
    proc = subprocess.run([sys.executable, "-m", "clarityx", "predict", str(fundus_jpeg), "--model",
                           str(tiny_model), "--json"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.strip())
    assert record["status"] == "ok" and record["path"] == str(fundus_jpeg)


def test_heatmaps_of_same_named_photos_do_not_overwrite(tiny_model, tmp_path, capsys):
    for folder, seed in (("a", 1), ("b", 2)):
        (tmp_path / folder).mkdir()
        Image.fromarray(synthetic_fundus(300, seed=seed)).save(tmp_path / folder / "1.jpg")
    heat = tmp_path / "heat"
    code, out, _ = run_cli(["predict", str(tmp_path / "a"), str(tmp_path / "b"), "--model", str(tiny_model),
                            "--json", "--heatmap-dir", str(heat)], capsys)
    assert code == 0 and all(json.loads(line)["status"] == "ok" for line in out.splitlines())
    assert len(list(heat.glob("*.gradcam.png"))) == 2


def test_predict_keeps_the_input_order_and_a_missing_file_is_an_error(tiny_model, tmp_path, capsys):
    """Issue 19, item 20: refusals were printed before the batch's graded photos, and a missing file
    exited 0."""
    names = []
    for i in range(5):
        path = tmp_path / f"p{i}.jpg"
        if i % 2:
            path.write_text("not an image")  # refused at once; the others wait for the model
        else:
            Image.fromarray(synthetic_fundus(300, seed=i)).save(path)
        names.append(str(path))
    names.insert(2, str(tmp_path / "absent.jpg"))
    code, out, err = run_cli(["predict", *names, "--model", str(tiny_model), "--json", "--batch-size", "4"], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == names
    assert code == 1 and "absent.jpg" in err
    missing = records[2]
    assert missing["status"] == "error" and "No such file" in missing["message"]


def test_predict_json_says_whether_referable_dr_is_flagged_with_the_threshold(tiny_model, tmp_path, capsys):
    import shutil

    model = tmp_path / "flags.keras"
    shutil.copy(tiny_model, model)
    card = json.loads(tiny_model.with_name(tiny_model.stem + ".card.json").read_text())
    (tmp_path / "flags.card.json").write_text(json.dumps({**card, "dr_threshold": 0.0}))
    Image.fromarray(synthetic_fundus(300, seed=1)).save(tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_text("not an image")
    code, out, _ = run_cli(["predict", str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), "--model", str(model),
                            "--json"], capsys)
    ok, bad = (json.loads(line) for line in out.splitlines())
    assert code == 0 and ok["referable"] is True and ok["referable_threshold"] == 0.0
    assert bad["referable"] is None
    code, out, _ = run_cli(["predict", str(tmp_path / "a.jpg"), "--model", str(tiny_model), "--json"], capsys)
    assert json.loads(out)["referable"] is None and json.loads(out)["referable_threshold"] is None  # no threshold


def test_an_untested_model_says_so_and_a_flagged_normal_eye_gets_the_dr_heat_map(tiny_model, tmp_path, capsys):
    """Issue 24, items 5 and 16: a model tested on a handful of photos answered with full confidence; the JSON
    named no heat map; a "normal" eye flagged for referable DR got only the "normal" map; raw keys in plain output."""
    import shutil

    model = tmp_path / "flags.keras"
    shutil.copy(tiny_model, model)
    card = json.loads(tiny_model.with_name(tiny_model.stem + ".card.json").read_text())
    card_file = tmp_path / "flags.card.json"
    card_file.write_text(json.dumps({**card, "dr_threshold": 0.0, "metrics": {"test": {"n": 2}}}))
    Image.fromarray(synthetic_fundus(300, seed=1)).save(tmp_path / "a.jpg")
    heat = tmp_path / "heat"
    code, out, err = run_cli(["predict", str(tmp_path / "a.jpg"), "--model", str(model), "--json",
                              "--heatmap-dir", str(heat)], capsys)
    row = json.loads(out)
    assert code == 0 and row["untested"] is True and "Untested model" in err and "only 2 photos" in err
    maps = {p.name for p in heat.iterdir()}
    assert row["heatmap"] == str(heat / f"a.{row['top']}.gradcam.png")
    if row["top"] != "diabetic_retinopathy":  # flagged (threshold 0) under another answer: the DR map too
        assert "a.diabetic_retinopathy.gradcam.png" in maps
        assert row["heatmaps"]["diabetic_retinopathy"] == str(heat / "a.diabetic_retinopathy.gradcam.png")
    assert maps == {Path(p).name for p in row.get("heatmaps", {row["top"]: row["heatmap"]}).values()}
    # Tested on enough photos: not untested. Plain output: labels a person reads, no raw keys.
    card_file.write_text(json.dumps({**card, "dr_threshold": 0.0, "metrics": {"test": {"n": 500}}}))
    code, out, err = run_cli(["predict", str(tmp_path / "a.jpg"), str(tmp_path / "gone.jpg"), "--model", str(model)],
                             capsys)
    assert code == 1 and "Untested" not in err and "— untested model" not in out
    assert "diabetic_retinopathy" not in out and "Diabetic retinopathy" in out
    assert "1 of the named files or folders does not exist" in err
    code, out, _ = run_cli(["predict", str(tmp_path / "a.jpg"), "--model", str(model), "--json"], capsys)
    assert json.loads(out)["untested"] is False and json.loads(out)["heatmap"] is None


def test_which_heat_maps_are_drawn_is_one_rule_on_the_results_own_referable_score():
    """Review item 9: the rule (the top answer's map, and diabetic retinopathy's when referable DR is flagged under
    another top answer) was copied in the CLI and the Ray actor; it is one helper now, and its flag is the result's
    own referable score (a grade layer's), not the DR class's probability."""
    import inspect

    from clarityx import cli, scale
    from clarityx.screening.heatmap import heatmap_conditions
    from clarityx.screening.pipeline import Result

    classes = ["normal", "diabetic_retinopathy", "glaucoma"]
    ranked = [("normal", 0.8), ("diabetic_retinopathy", 0.15), ("glaucoma", 0.05)]
    assert heatmap_conditions(Result("ok", ranked=ranked, referable_score=0.6), classes, 0.3) == \
        ["normal", "diabetic_retinopathy"]  # the grade layer flags it, though P(DR) is under the threshold
    # P(DR) is over this threshold, the grade layer's score is not: not flagged
    assert heatmap_conditions(Result("ok", ranked=ranked, referable_score=0.1), classes, 0.12) == ["normal"]
    assert heatmap_conditions(Result("ok", ranked=ranked, referable_score=0.6), classes, None) == ["normal"]
    assert heatmap_conditions(Result("ok", ranked=ranked, referable_score=0.6), ["normal", "glaucoma"], 0.3) == \
        ["normal"]  # no DR map to draw
    top_dr = [("diabetic_retinopathy", 0.7), ("normal", 0.3)]
    assert heatmap_conditions(Result("ok", ranked=top_dr, referable_score=0.7), classes, 0.3) == \
        ["diabetic_retinopathy"]  # drawn once
    assert heatmap_conditions(Result("rejected", "too dark"), classes, 0.3) == []
    for source in (inspect.getsource(cli.cmd_predict), inspect.getsource(scale.ModelActor)):
        assert "heatmap_conditions(" in source and "DIABETIC_RETINOPATHY" not in source
