"""Tests of bnn_saliency.bench: the statistics and bookkeeping against closed forms, and every
measurement once on a tiny twin (structure, units, restored global state)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from tensorflow import keras

from bnn_saliency import bench, stats, verdicts
from bnn_saliency.models.twins import build_twin, gradcam_layer
from bnn_saliency.study import appendix_performance


# ------------------------------------------------------------------------ statistics
def test_ratio_ci_closed_forms():
    a = np.array([2.0, 3.0, 5.0, 7.0, 11.0])
    # constant samples: no spread, the interval collapses onto the ratio
    assert stats.ratio_ci([4.0] * 5, [2.0] * 3, paired=False) == (2.0, 2.0, 2.0)
    # a sample scaled by c: ratio of medians is exactly c, and c lies inside the interval
    point, low, high = stats.ratio_ci(3 * a, a, paired=False)
    assert point == pytest.approx(3.0) and low <= 3.0 <= high
    # swapping numerator and denominator inverts point and interval
    p2, l2, h2 = stats.ratio_ci(a, 3 * a, paired=False)
    assert p2 == pytest.approx(1 / 3) and l2 == pytest.approx(1 / high) and h2 == pytest.approx(1 / low)
    # the interval lies within the range of all ratios of sample values
    assert low >= a.min() * 3 / a.max() and high <= a.max() * 3 / a.min()


@pytest.mark.parametrize("bad", [[], [1.0, -1.0], [1.0, np.nan], [[1.0]]])
def test_ratio_ci_rejects_bad_timings(bad):
    with pytest.raises(ValueError, match="timings"):
        stats.ratio_ci(bad, [1.0], paired=False)


@pytest.mark.parametrize("low, high, goal, direction, verdict", [
    (5.5, 7.0, 5.0, "above", "met"), (5.0, 7.0, 5.0, "above", "met"),
    (4.0, 6.0, 5.0, "above", "borderline"), (3.0, 4.9, 5.0, "above", "not met"),
    (1.0, 1.1, 1.2, "below", "met"), (1.1, 1.3, 1.2, "below", "borderline"),
    (1.25, 1.4, 1.2, "below", "not met")])
def test_goal_verdict(low, high, goal, direction, verdict):
    assert verdicts.Rule.goal(goal, direction).verdict(low, high) == verdict
    # mirror symmetry: "below" a goal is "above" its negative
    other = "below" if direction == "above" else "above"
    assert verdicts.Rule.goal(-goal, other).verdict(-high, -low) == verdict


def test_goal_verdict_bad_input():
    with pytest.raises(ValueError, match="direction"):
        verdicts.Rule.goal(1, "up").verdict(1, 2)
    with pytest.raises(ValueError, match="must not exceed"):
        verdicts.Rule.goal(1, "above").verdict(2, 1)


def _fake_results():
    """Timings chosen so that every derived number has a closed form."""
    return {
        "smoothgrad": [{
            "model": "m", "images": 2, "n_samples": 10, "best_batch": 4,
            "per_image_pass_s": {"1": [0.09] * 3, "4": [0.04] * 3},
            "ours_s": [1.0] * 3,          # 0.5 s per map; bound 10 x 0.04 = 0.4 s: ratio 1.25
            "tfkerasvis_s": [8.0] * 3}],  # 4 s per map: speed-up 8
        "methods": [{"model": "m", "method": "integrated_gradients", "params": {"steps": 64},
                     "images": 2, "seconds": [0.5, 0.4, 0.6]},
                    {"model": "m", "method": "scorecam", "params": {"max_n": 32},
                     "images": 1, "seconds": [2.0]}],
        "training": [{"model": "vgg-fp", "precision": "float32", "images": 256, "seconds": [2.0]},
                     {"model": "vgg-fp", "precision": "mixed_bfloat16", "images": 256,
                      "seconds": [1.0]}],
    }


def test_summary_closed_form():
    goals, methods, training = appendix_performance.summary(_fake_results())
    sp = goals[goals["goal"].str.contains("speed-up")].iloc[0]
    assert (sp["value"], sp["low"], sp["high"], sp["verdict"]) == (8.0, 8.0, 8.0, "met")
    assert sp["ceiling"] == pytest.approx(4.0 / 0.4)  # tf-keras-vis per map / lower bound
    rb = goals[goals["goal"].str.contains("lower bound")].iloc[0]
    assert rb["value"] == pytest.approx(1.25) and rb["verdict"] == "not met"
    rate = methods.set_index("method")["maps_per_s"]
    assert rate["SmoothGrad (ours)"] == pytest.approx(2.0)
    assert rate["SmoothGrad (tf-keras-vis)"] == pytest.approx(0.25)
    assert rate["IG (64 steps)"] == pytest.approx(2 / 0.5)
    assert rate["Score-CAM (max_n=32)"] == pytest.approx(0.5)
    tr = training.set_index("precision")
    assert tr.loc["mixed_bfloat16", "images_per_s"] == pytest.approx(256.0)
    assert tr.loc["mixed_bfloat16", "vs_float32"] == pytest.approx(2.0)


# ------------------------------------------------------------------------ bookkeeping
def test_time_calls_counts_and_measures():
    calls = []

    def fn():
        calls.append("timed")
        time.sleep(0.01)

    times = bench.time_calls(fn, 3, warmup=2, warmup_fn=lambda: calls.append("warm"))
    assert calls == ["warm", "warm", "timed", "timed", "timed"]
    assert len(times) == 3 and all(0.01 <= s < 1.0 for s in times)
    with pytest.raises(ValueError, match="reps"):
        bench.time_calls(fn, 0)


def test_record_and_read_builds(tmp_path):
    log = tmp_path / "b" / "build_time.json"
    assert bench.latest_builds(log) == {"cold": None, "warm": None}
    bench.record_build(600.4, True, 0, log)
    bench.record_build(30.0, False, 2, log)   # a failed build is never "latest"
    bench.record_build(45.26, False, 0, log)
    latest = bench.latest_builds(log)
    assert latest["cold"]["seconds"] == 600.4 and latest["warm"]["seconds"] == 45.3
    for i in range(30):
        bench.record_build(float(i), False, 0, log, keep=5)
    assert [r["seconds"] for r in json.loads(log.read_text())] == [25.0, 26.0, 27.0, 28.0, 29.0]
    with pytest.raises(ValueError, match="seconds"):
        bench.record_build(-1, True, 0, log)
    log.write_text("{not json")
    with pytest.raises(ValueError, match="delete it"):
        bench.latest_builds(log)


def test_cli_records_a_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "BUILD_LOG", tmp_path / "build_time.json")
    bench.main(["--record-build", "12", "--cold", "1", "--exit-code", "0"])
    assert "12.0 s (cold cache)" in capsys.readouterr().out
    assert bench.latest_builds()["cold"]["seconds"] == 12.0


def test_builds_only_refreshes_build_times_and_keeps_the_rest(tmp_path):
    out, log = tmp_path / "bench.json", tmp_path / "build_time.json"
    with pytest.raises(FileNotFoundError, match="make bench"):
        bench.main(["--out", str(out), "--builds-only", str(log)])
    out.write_text(json.dumps({"smoothgrad": [1, 2],
                               "book_build": {"cold": None, "warm": {"seconds": 9.0}}}))
    with pytest.raises(FileNotFoundError, match="make book"):
        bench.main(["--out", str(out), "--builds-only", str(log)])
    bench.record_build(700.0, True, 0, log)
    bench.main(["--out", str(out), "--builds-only", str(log)])
    result = json.loads(out.read_text())
    assert result["smoothgrad"] == [1, 2]
    assert result["book_build"]["cold"]["seconds"] == 700.0
    assert result["book_build"]["warm"] == {"seconds": 9.0}  # no newer warm record: kept


def test_machine_description():
    m = bench.machine()
    assert m["cores"] >= 1 and m["cpu"] and m["tensorflow"].count(".") >= 1


# ------------------------------------------------------------------------ measurements
@pytest.fixture(scope="module")
def tiny_twin():
    keras.utils.set_random_seed(0)
    return build_twin("vgg", "bnn", width=4)


def test_measurements_on_a_tiny_twin(tiny_twin):
    per_image = bench.grad_pass_times(tiny_twin, [2, 4], reps=2)
    assert set(per_image) == {2, 4} and all(len(v) == 2 and min(v) > 0 for v in per_image.values())
    assert bench.best_batch({2: [3.0, 1.0, 2.0], 4: [1.5, 1.5, 1.5]}) == 4  # by median
    x, t = bench._inputs(tiny_twin, 3, 0, (0.0, 1.0))
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and t.max() < 10
    sg = bench.bench_smoothgrad(tiny_twin, x, t, n_samples=3, noise=0.2, batch_size=4, reps=2)
    assert len(sg["ours_s"]) == 2 and len(sg["tfkerasvis_s"]) == 2
    rows = bench.bench_methods(tiny_twin, x, t, layer=gradcam_layer("vgg"), reps=1, ig_steps=4,
                               ig_images=2, scorecam_max_n=2, cheap_warmup=True)
    assert [r["method"] for r in rows] == ["gradcam", "integrated_gradients", "scorecam"]
    assert [r["images"] for r in rows] == [3, 2, 2] and all(r["seconds"][0] > 0 for r in rows)


def test_training_throughput_restores_policy():
    before = keras.mixed_precision.global_policy().name
    row = bench.bench_training("vgg-bnn", 4, precision="mixed_bfloat16", batch_size=8, steps=2,
                               reps=1)
    assert row["images"] == 16 and row["seconds"][0] > 0
    assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(ValueError, match="precision"):
        bench.bench_training("vgg-bnn", 4, precision="float16", batch_size=8, steps=1, reps=1)


def test_committed_results_render():
    """The JSON the performance appendix reads has what the appendix needs."""
    path = bench.DEFAULT_OUT
    if not path.exists():
        pytest.skip(f"{path} not written yet: run `make bench`")
    results = json.loads(path.read_text())
    assert {"machine", "goals", "smoothgrad", "methods", "training", "book_build"} <= set(results)
    goals, methods, training = appendix_performance.summary(results)
    assert len(goals) and set(goals["verdict"]) <= {"met", "borderline", "not met"}
    assert np.all(methods["maps_per_s"] > 0) and np.all(training["images_per_s"] > 0)


def test_chapter_times_sums_cell_timestamps(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    stamps = [("2026-01-01T00:00:00Z", "2026-01-01T00:00:02.5Z"),
              ("2026-01-01T00:00:03Z", "2026-01-01T00:01:03Z")]
    for (start, end), src in zip(stamps, ["t0 = time.perf_counter()\nx = slow()", "y = 1"]):
        cell = nbformat.v4.new_code_cell(src)
        cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_code_cell("never executed"))
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    table = appendix_performance.chapter_times(tmp_path)
    row = table.iloc[0]
    assert row["chapter"] == "01_x" and row["seconds"] == 62.5 and row["cells"] == 3
    assert row["costliest"].startswith("cell 1 (60 s): y = 1; cell 0 (2 s): x = slow()")
