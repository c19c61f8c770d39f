"""``clarityx predict --engine ray`` (clarityx.scale) against the single-process engine, on a local Ray of 2 CPUs.

Skipped when Ray is not installed (``pip install ".[scale]"``). One Ray for the module; the bundled model.
Nothing here waits on a clock: the killed actor dies on a marker file, the stop is a closed generator.
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

MEXICO = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "mexico" / "images"
N_REAL = 35


@pytest.fixture(scope="module")
def local_ray():
    if not MEXICO.is_dir():
        pytest.skip(f"needs the outside photos in {MEXICO}")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """40 photos: 35 real ones, 2 synthetic fundus photos, a non-fundus picture and 2 damaged files."""
    folder = tmp_path_factory.mktemp("photos")
    real = sorted(MEXICO.glob("*.jpg"))[:N_REAL] if MEXICO.is_dir() else []
    out = []
    for i in range(2):
        p = folder / f"synthetic_{i}.png"
        cv2.imwrite(str(p), cv2.cvtColor(synthetic_fundus(400, seed=i), cv2.COLOR_RGB2BGR))
        out.append(p)
    grey = folder / "grey_wall.png"
    cv2.imwrite(str(grey), np.full((300, 400, 3), 128, np.uint8))
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(real[0].read_bytes()[:3000] if real else b"\xff\xd8\xff")
    not_an_image = folder / "notes.jpg"
    not_an_image.write_text("not a photo")
    return real + out + [grey, truncated, not_an_image]


def run(argv: list[str], capsys) -> tuple[int, list[dict], str]:
    code = cli.main(["predict", *argv])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


@pytest.fixture(scope="module")
def baseline(photos, tmp_path_factory) -> tuple[dict[str, dict], Path]:
    """The single-process engine's rows (by path) and heat maps for the 40 photos."""
    import contextlib
    import io

    heatmaps = tmp_path_factory.mktemp("heatmaps_local")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["predict", *map(str, photos), "--json", "--heatmap-dir", str(heatmaps)]) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == len(photos)
    return {r["path"]: r for r in rows}, heatmaps


def assert_same_rows(rows: list[dict], expected: dict[str, dict]) -> None:
    assert sorted(r["path"] for r in rows) == sorted(expected)  # one row per photo, none twice
    for row in rows:
        want = expected[row["path"]]
        assert set(row) == set(want)
        assert {k: v for k, v in row.items() if k != "probabilities"} == \
            {k: v for k, v in want.items() if k != "probabilities"}, row["path"]
        if want["probabilities"] is None:
            assert row["probabilities"] is None
        else:
            assert list(row["probabilities"]) == list(want["probabilities"])  # same ranking
            for c, p in want["probabilities"].items():
                assert abs(row["probabilities"][c] - p) <= 1e-5, (row["path"], c)


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
    assert len(list(heatmaps.iterdir())) == sum(r["status"] == "ok" for r in rows)
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
    assert code == 1 and "do not exist: " + str(missing) in err  # as the single-process engine
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
    ok = [json.loads(r["line"]) for r in rows if json.loads(r["line"])["status"] == "ok"]
    assert len(list((tmp_path / "h").glob("*.png"))) == len(ok)
    assert not list((tmp_path / "h").glob(".*"))  # no half-written heat map left behind


def test_resume_after_a_stop_screens_only_the_rest(local_ray, photos, baseline, tmp_path, capsys):
    expected, _ = baseline
    subset = photos[:10]
    manifest = tmp_path / "archive.csv"  # a manifest CSV as input: paths relative to it
    manifest.write_text("path,patient\n" + "".join(f"{os.path.relpath(p, tmp_path)},x\n" for p in subset))
    listed = scale.list_photos([str(manifest)])
    assert [os.path.abspath(p) for p in listed] == [os.path.abspath(p) for p in subset]

    rows = scale.screen(scale.plan(listed), str(default_model_path().resolve()), cli.heatmap_name,
                        num_actors=1, batch_size=2)
    first = [next(rows)["line"] for _ in range(4)]
    rows.close()  # the run is stopped after 4 rows
    results = tmp_path / "results.jsonl"
    results.write_text("".join(line + "\n" for line in first) + first[-1][:25])  # a line cut short

    code, rest, err = run([str(manifest), "--engine", "ray", "--json", "--resume", str(results)], capsys)
    assert code == 0 and "4 of 10 photos already in" in err
    done = [json.loads(line) for line in first]
    assert len(rest) == 6 and not {r["path"] for r in rest} & {r["path"] for r in done}
    everything = {os.path.abspath(r["path"]): r for r in done + rest}
    assert sorted(everything) == sorted(os.path.abspath(p) for p in subset)
    assert_same_rows([{**r, "path": str(Path(k))} for k, r in everything.items()],
                     {os.path.abspath(p): expected[str(p)] for p in subset})

    results.write_text(results.read_text() + "\n" + "".join(json.dumps(r) + "\n" for r in rest))
    code, again, err = run([str(manifest), "--engine", "ray", "--json", "--resume", str(results)], capsys)
    assert code == 0 and again == [] and "10 of 10" in err  # all done: nothing screened twice


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


def test_plan_marks_shared_file_names_and_skips_what_is_done(tmp_path):
    paths = [tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg", tmp_path / "c" / "y.jpg"]
    assert [i["shared_name"] for i in scale.plan(paths)] == [True, True, False]
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"path": str(paths[1]), "status": "ok"}) + "\n{\"path\": \"cut sh")
    assert [i["index"] for i in scale.plan(paths, scale.already_done(results))] == [0, 2]
    assert scale.already_done(tmp_path / "not yet.jsonl") == set()
