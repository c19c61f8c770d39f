"""``clarityx predict --engine ray`` (clarityx.scale) against the single-process engine, on a local Ray of 2 CPUs.

Skipped when Ray is not installed (``pip install ".[scale]"``). One Ray for the module; the bundled model.
The photos are made here (copies of scikit-image's real fundus photo, synthetic ones, damaged files): the tests
run in any clone. Nothing here waits on a clock: the killed actor dies on a marker file, the poison photo on its
name, the stop is a closed generator.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from clarityx import cli, scale  # noqa: E402
from clarityx.screening.engine import default_model_path  # noqa: E402
from tests.conftest import synthetic_fundus  # noqa: E402

N_REAL = 10


def retina_copies(folder: Path, n: int = N_REAL) -> list[Path]:
    """``n`` photos a camera could have taken of one real eye: scikit-image's fundus photo (offline) flipped,
    turned, at 512–1,000 px, lighter or darker, saved as JPEG."""
    from PIL import Image, ImageEnhance
    from skimage import data

    retina = np.ascontiguousarray(data.retina()[..., :3])
    out = []
    for i in range(n):
        img = np.rot90(retina[:, ::-1] if i % 2 else retina, k=(i // 2) % 4)
        side = (512, 640, 800, 1000, 720)[i % 5]
        img = cv2.resize(np.ascontiguousarray(img), (side, side), interpolation=cv2.INTER_AREA)
        path = folder / f"retina_{i:02d}.jpg"
        ImageEnhance.Brightness(Image.fromarray(img)).enhance(0.85 + 0.06 * i).save(path, quality=90)
        out.append(path)
    return out


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """15 photos: 10 copies of a real fundus photo, 2 synthetic fundus photos, a non-fundus picture and 2
    damaged files."""
    folder = tmp_path_factory.mktemp("photos")
    real = retina_copies(folder)
    out = []
    for i in range(2):
        p = folder / f"synthetic_{i}.png"
        cv2.imwrite(str(p), cv2.cvtColor(synthetic_fundus(400, seed=i), cv2.COLOR_RGB2BGR))
        out.append(p)
    grey = folder / "grey_wall.png"
    cv2.imwrite(str(grey), np.full((300, 400, 3), 128, np.uint8))
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(real[0].read_bytes()[:3000])
    not_an_image = folder / "notes.jpg"
    not_an_image.write_text("not a photo")
    return real + out + [grey, truncated, not_an_image]


def run(argv: list[str], capsys) -> tuple[int, list[dict], str]:
    code = cli.main(["predict", *argv])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


@pytest.fixture(scope="module")
def baseline(photos, tmp_path_factory) -> tuple[dict[str, dict], Path]:
    """The single-process engine's rows (by path) and heat maps for the 15 photos."""
    import contextlib
    import io

    heatmaps = tmp_path_factory.mktemp("heatmaps_local")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["predict", *map(str, photos), "--json", "--heatmap-dir", str(heatmaps)]) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == len(photos)
    return {r["path"]: r for r in rows}, heatmaps


def assert_same_rows(rows: list[dict], expected: dict[str, dict], maps: bool = True) -> None:
    """``maps``: both runs wrote heat maps (else only the answers are compared)."""
    assert sorted(r["path"] for r in rows) == sorted(expected)  # one row per photo, none twice
    for row in rows:
        want = expected[row["path"]]
        if not maps:
            row = {k: v for k, v in row.items() if k not in ("heatmap", "heatmaps")}
            want = {k: v for k, v in want.items() if k not in ("heatmap", "heatmaps")}
            row["heatmap"] = want["heatmap"] = None
        assert set(row) == set(want)
        apart = ("probabilities", "heatmap", "heatmaps")  # heat maps: the same names (each run its own folder)
        assert {k: v for k, v in row.items() if k not in apart} == \
            {k: v for k, v in want.items() if k not in apart}, row["path"]
        assert (row["heatmap"] is None) == (want["heatmap"] is None)
        assert Path(row["heatmap"] or "").name == Path(want["heatmap"] or "").name
        assert {c: Path(p).name for c, p in (row.get("heatmaps") or {}).items()} == \
            {c: Path(p).name for c, p in (want.get("heatmaps") or {}).items()}
        if want["probabilities"] is None:
            assert row["probabilities"] is None
        else:
            assert list(row["probabilities"]) == list(want["probabilities"])  # same ranking
            for c, p in want["probabilities"].items():
                assert abs(row["probabilities"][c] - p) <= 1e-5, (row["path"], c)


def maps_named(rows: list[dict]) -> list[str]:
    """The heat maps the rows say were written (file names)."""
    return sorted(Path(p).name for r in rows for p in (r.get("heatmaps") or {"": r["heatmap"]}).values() if p)


def test_same_rows_and_heatmaps_as_the_single_process_engine(local_ray, photos, baseline, tmp_path, capsys):
    expected, local_heatmaps = baseline
    heatmaps = tmp_path / "heatmaps"
    code, rows, _ = run([*map(str, photos), "--engine", "ray", "--num-actors", "2", "--json",
                         "--heatmap-dir", str(heatmaps)], capsys)
    assert code == 0
    assert_same_rows(rows, expected)
    statuses = {r["status"] for r in rows}
    assert "ok" in statuses and "rejected" in statuses
    assert sorted(p.name for p in heatmaps.iterdir()) == sorted(p.name for p in local_heatmaps.iterdir())
    assert sorted(p.name for p in heatmaps.iterdir()) == maps_named(rows)  # each row names its maps
    for png in local_heatmaps.iterdir():
        a = cv2.imread(str(png)).astype(int)
        b = cv2.imread(str(heatmaps / png.name)).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 2, png.name


def test_a_damaged_file_among_good_ones_is_a_row_not_a_stop(local_ray, photos, baseline, tmp_path, capsys):
    expected, _ = baseline
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in photos[:3] + photos[-2:]:  # three good photos, a truncated JPEG, a text file named .jpg
        shutil.copy(p, folder / p.name)
    missing = tmp_path / "gone.jpg"  # named on the command line, not there
    code, rows, err = run([str(folder), str(missing), "--engine", "ray", "--json"], capsys)
    assert code == 1 and "not exist: " + str(missing) in err  # as the single-process engine
    assert len(rows) == 6
    by_name = {Path(r["path"]).name: r for r in rows}
    for p in photos[:3]:
        assert by_name[p.name]["status"] == expected[str(p)]["status"]
    for name in ("truncated.jpg", "notes.jpg", "gone.jpg"):
        assert by_name[name]["status"] in ("rejected", "error") and by_name[name]["message"]
        assert by_name[name]["probabilities"] is None


def test_a_killed_actor_is_retried_and_every_photo_has_one_row(local_ray, photos, baseline, tmp_path):
    expected, _ = baseline
    marker = tmp_path / "died"

    class DiesOnce(scale.ModelActor):  # defined here: Ray pickles it by value
        calls = 0

        def __call__(self, batch):
            self.calls += 1
            if self.calls == 2 and not os.path.exists(marker):  # in the middle of the run, once
                open(marker, "w").close()
                os._exit(1)
            return super().__call__(batch)

    items = scale.plan(photos[:12])
    rows = list(scale.screen(items, str(default_model_path().resolve()), cli.heatmap_name, str(tmp_path / "h"),
                             num_actors=1, batch_size=2, actor_cls=DiesOnce))
    assert marker.exists(), "the actor was never killed"
    assert sorted(r["index"] for r in rows) == list(range(12))
    assert_same_rows([json.loads(r["line"]) for r in rows], {str(p): expected[str(p)] for p in photos[:12]})
    assert sorted(p.name for p in (tmp_path / "h").glob("*.png")) == maps_named([json.loads(r["line"]) for r in rows])
    assert not list((tmp_path / "h").glob(".*"))  # no half-written heat map left behind


def appended_to(path: Path, monkeypatch):
    """``>> path``: standard output appended to the results file (a real file, as the shell opens it)."""
    out = open(path, "a", encoding="utf-8")
    monkeypatch.setattr("sys.stdout", out)
    return out


def test_resume_after_a_stop_retries_the_error_row_and_answers_every_photo_once(local_ray, photos, baseline,
                                                                                  tmp_path, monkeypatch, capsys):
    """The README's own command after a stopped run whose results file ends in a cut line and holds an error
    row: every photo ends with exactly one answer, the error row's photo screened again, answers as one
    process gives; nothing here adds the missing newline (issue 25, items 1 and 2)."""
    expected, _ = baseline
    subset = photos[:10]
    manifest = tmp_path / "archive.csv"  # a manifest CSV as input: paths relative to it
    manifest.write_text("path,patient\n" + "".join(f"{os.path.relpath(p, tmp_path)},x\n" for p in subset))
    listed = scale.list_photos([str(manifest)])
    assert [os.path.abspath(p) for p in listed] == [os.path.abspath(p) for p in subset]

    rows = scale.screen(scale.plan(listed), str(default_model_path().resolve()), cli.heatmap_name,
                        num_actors=1, batch_size=2)
    first = [next(rows)["line"] for _ in range(5)]
    rows.close()  # the run is stopped after 5 rows
    failed = json.loads(first[3])  # ... and one of them was a transient error
    failed.update(status="error", top=None, probabilities=None, referable=None,
                  message="lost by the Ray pipeline; run again with --resume")
    results = tmp_path / "results.jsonl"
    results.write_text("".join(line + "\n" for line in first[:3]) + json.dumps(failed) + "\n" + first[4][:25])

    out = appended_to(results, monkeypatch)  # clarityx predict ... --resume results.jsonl >> results.jsonl
    code = cli.main(["predict", str(manifest), "--engine", "ray", "--json", "--resume", str(results)])
    out.close()
    err = capsys.readouterr().err
    assert code == 0 and "3 of 10 photos already answered in" in err  # the error row is no answer

    lines = results.read_text().splitlines()
    broken = []
    answers: dict[str, list[dict]] = {}
    for text in lines:
        try:
            row = json.loads(text)
        except ValueError:
            broken.append(text)
            continue
        if row["status"] != "error":
            answers.setdefault(os.path.abspath(row["path"]), []).append(row)
    assert broken == [first[4][:25]]  # the cut line alone: the first appended row did not join it
    assert sorted(answers) == sorted(os.path.abspath(p) for p in subset)
    assert all(len(found) == 1 for found in answers.values())  # every photo answered exactly once
    assert answers[os.path.abspath(failed["path"])][0]["status"] in ("ok", "rejected")  # the error row, retried
    assert_same_rows([{**found[0], "path": os.path.abspath(k)} for k, found in answers.items()],
                     {os.path.abspath(p): expected[str(p)] for p in subset}, maps=False)

    before = results.read_bytes()
    out = appended_to(results, monkeypatch)
    code = cli.main(["predict", str(manifest), "--engine", "ray", "--json", "--resume", str(results)])
    out.close()
    assert code == 0 and "10 of 10" in capsys.readouterr().err
    assert results.read_bytes() == before  # all answered: nothing screened twice, nothing written


def test_a_heat_map_that_cannot_be_written_prints_no_row_and_resume_screens_it(local_ray, photos, baseline,
                                                                              tmp_path, monkeypatch, capsys):
    """A failed heat map stops the run before its photo's row: the photo is not counted as done (item 1)."""
    expected, _ = baseline
    subset = [p for p in photos[:4] if expected[str(p)]["status"] == "ok"]
    victim = subset[0]
    heatmaps = tmp_path / "heatmaps"
    for condition in expected[str(victim)]["probabilities"]:  # a folder where its heat map must go: cannot replace
        (heatmaps / cli.heatmap_name(victim, set(), condition)).mkdir(parents=True)
    results = tmp_path / "results.jsonl"
    argv = ["predict", *map(str, subset), "--engine", "ray", "--json", "--heatmap-dir", str(heatmaps),
            "--resume", str(results), "--num-actors", "1"]
    out = appended_to(results, monkeypatch)
    code = cli.main(argv)
    out.close()
    err = capsys.readouterr().err
    assert code == 1 and f"before printing the row of {victim}" in err and "Traceback" not in err
    assert str(victim) not in {json.loads(t)["path"] for t in results.read_text().splitlines()}

    for folder in heatmaps.iterdir():
        if folder.is_dir():
            folder.rmdir()  # the disk has room again
    out = appended_to(results, monkeypatch)
    code = cli.main(argv)
    out.close()
    rows = [json.loads(t) for t in results.read_text().splitlines()]
    assert code == 0 and sorted(r["path"] for r in rows) == sorted(map(str, subset))
    assert (heatmaps / cli.heatmap_name(victim, set(), expected[str(victim)]["top"])).is_file()


def test_a_photo_that_kills_its_worker_every_time_becomes_an_error_row(local_ray, photos, baseline, tmp_path):
    """Finite retries (item 5): the poison photo costs a few restarts and ends as an error row; the photos of
    its block are screened again one by one and answered as by one process."""
    expected, _ = baseline

    class DiesOnPoison(scale.ModelActor):  # defined here: Ray pickles it by value
        def __call__(self, batch):
            if any("poison" in str(p) for p in batch["path"]):
                os._exit(1)  # as a segfaulting decoder or model would
            return super().__call__(batch)

    poison = tmp_path / "poison.jpg"
    shutil.copy(photos[0], poison)
    listed = photos[:3] + [poison] + photos[3:6]
    rows = list(scale.screen(scale.plan(listed), str(default_model_path().resolve()), cli.heatmap_name,
                             num_actors=1, batch_size=2, actor_cls=DiesOnPoison))
    assert sorted(r["index"] for r in rows) == list(range(len(listed)))  # one row each, and the run ended
    by_path = {r["path"]: json.loads(r["line"]) for r in rows}
    assert by_path[str(poison)]["status"] == "error" and by_path[str(poison)]["message"] == scale.CRASHED
    assert_same_rows([row for path, row in by_path.items() if path != str(poison)],
                     {str(p): expected[str(p)] for p in listed if p != poison}, maps=False)
    results = tmp_path / "results.jsonl"
    results.write_text("".join(r["line"] + "\n" for r in rows))
    assert [i["path"] for i in scale.plan(listed, scale.already_done(results))] == [str(poison)]  # retried later


def test_resume_without_json_is_refused(tmp_path, capsys):
    """Plain lines name no photo exactly: --resume needs --json (item 3)."""
    results = tmp_path / "results.txt"
    results.write_text("a.jpg: normal (normal 90%)\n")
    assert cli.main(["predict", str(tmp_path), "--engine", "ray", "--resume", str(results)]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "add --json" in err and "Traceback" not in err


def test_options_need_the_ray_engine_and_ray_itself(tmp_path, capsys, monkeypatch):
    assert cli.main(["predict", str(tmp_path), "--resume", str(tmp_path / "r.jsonl")]) == 2
    assert "need --engine ray" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    assert cli.main(["predict", str(tmp_path), "--engine", "ray"]) == 2
    assert 'pip install ".[scale]"' in capsys.readouterr().err


def test_ray_command_and_limit():
    assert scale.ONE_MACHINE_LIMIT == 20_000
    command = scale.ray_command("/archive")
    assert command.startswith("clarityx predict /archive --engine ray") and "--resume" in command


def test_plan_marks_shared_file_names_and_skips_what_is_answered(tmp_path):
    paths = [tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg", tmp_path / "c" / "y.jpg"]
    assert [i["shared_name"] for i in scale.plan(paths)] == [True, True, False]
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"path": str(paths[1]), "status": "ok"}) + "\n{\"path\": \"cut sh")
    assert [i["index"] for i in scale.plan(paths, scale.already_done(results))] == [0, 2]
    assert len(scale.already_done(tmp_path / "not yet.jsonl")) == 0


def test_only_answers_count_as_done_error_rows_are_retried(tmp_path):
    """Item 1: "ok" and "rejected" rows are answers; an "error" row (an I/O error, a photo lost by the
    pipeline or crashing its worker) is not, even before or after an answer for another photo."""
    paths = [tmp_path / f"{name}.jpg" for name in ("ok", "rejected", "io_error", "lost", "crashed")]
    rows = [{"path": str(paths[0]), "status": "ok"}, {"path": str(paths[1]), "status": "rejected"},
            {"path": str(paths[2]), "status": "error", "message": "OSError: [Errno 5] Input/output error"},
            {"path": str(paths[3]), "status": "error", "message": "lost by the Ray pipeline; run again with --resume"},
            {"path": str(paths[4]), "status": "error", "message": scale.CRASHED}]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [i["path"] for i in scale.plan(paths, scale.already_done(results))] == list(map(str, paths[2:]))


def test_rows_appended_to_a_cut_line_are_still_read(tmp_path):
    """Item 2, the reader's side: a row that joined a cut line (an older run, or output not made by >>) counts."""
    whole = {"path": "/archive/b.jpg", "status": "ok"}
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"path": "/archive/a.jpg", "status": "ok"}) + "\n" + '{"path": "/archive/c.jp'
                       + json.dumps(whole) + "\n")
    assert scale.already_done(results).absolute == {"/archive/a.jpg", "/archive/b.jpg"}
    assert scale.ends_in_a_cut_line(results) is False
    results.write_text(results.read_text() + '{"path": "/arch')
    assert scale.ends_in_a_cut_line(results) is True


def test_resume_from_another_folder_finds_the_rows_by_the_rule(tmp_path, monkeypatch):
    """Item 3: a relative path printed from one folder names the same photo when resumed from another; a
    relative path that two listed photos end with names neither (both screened again, none skipped unseen)."""
    archive = tmp_path / "data" / "archive"
    paths = [archive / "left" / "a.jpg", archive / "right" / "a.jpg", archive / "left" / "b.jpg"]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    results = tmp_path / "data" / "results.jsonl"
    results.write_text("".join(json.dumps({"path": os.path.relpath(p, tmp_path / "data"), "status": "ok"}) + "\n"
                               for p in paths[:2]))  # printed by a run in data/: archive/left/a.jpg ...
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # resumed from another folder, the archive named by its absolute path
    assert [i["path"] for i in scale.plan(scale.list_photos([str(archive)]), scale.already_done(results))] == \
        [str(paths[2])]
    monkeypatch.chdir(tmp_path / "data")  # and from the same folder, by the relative one
    assert [i["path"] for i in scale.plan(scale.list_photos(["archive"]), scale.already_done(results))] == \
        [os.path.join("archive", "left", "b.jpg")]

    results.write_text(json.dumps({"path": "a.jpg", "status": "ok"}) + "\n")  # printed in left/ or right/?
    monkeypatch.chdir(elsewhere)
    assert len(scale.plan(scale.list_photos([str(archive)]), scale.already_done(results))) == 3
    monkeypatch.chdir(archive / "left")  # from left/ the row leads to left/a.jpg: that one only
    assert {i["path"] for i in scale.plan(scale.list_photos([str(archive)]), scale.already_done(results))} == \
        {str(paths[1]), str(paths[2])}


def test_a_python_error_for_one_photo_is_its_error_row_not_the_loss_of_its_block(photos, tmp_path):
    """Review item 4: the model actor caught only WriteFailed, so a Python bug for one photo dropped its whole
    block (and the photo was later said to have "crashed"). The actor is called here as Ray would call it,
    without Ray: the bug (here in naming a heat map) gives that photo an error row as the single-process engine
    does, and its neighbours their answers."""
    model = str(default_model_path().resolve())
    listed = photos[:3]

    def heatmap_name(path: Path, used: set[str], condition: str | None = None) -> str:
        if path == listed[1]:
            raise ValueError("a bug for this photo only")
        return cli.heatmap_name(path, used, condition)

    items = scale.plan(listed)
    batch = {key: np.array([item[key] for item in items]) for key in items[0]}
    batch = scale.prepare_batch(batch, model, as_json=True)
    out = scale.ModelActor(model, str(tmp_path / "h"), heatmap_name, as_json=True)(batch)
    rows = [json.loads(text) for text in out["line"]]
    assert [r["path"] for r in rows] == [str(p) for p in listed]
    assert rows[1]["status"] == "error" and rows[1]["message"] == "ValueError: a bug for this photo only"
    assert rows[0]["status"] == rows[2]["status"] == "ok" and rows[0]["heatmap"] and rows[2]["heatmap"]
    assert list(out["heatmap_error"]) == ["", "", ""]
