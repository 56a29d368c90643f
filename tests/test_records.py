"""Committed experiment records: written once, stale inputs refused, a live sample checked."""

import gzip

import numpy as np
import pandas as pd
import pytest

from bnn_saliency import records, results

VALUES = np.linspace(0.0, 1.0, 30)
CALLS = []


def table(idx, shift=0.0):
    CALLS.append(len(idx))
    rows = [{"image": k, "method": m, "score": VALUES[i] + shift + (m == "b")}
            for k, i in enumerate(idx) for m in ("a", "b")]
    return pd.DataFrame(rows)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("BNN_SALIENCY_RECOMPUTE", raising=False)
    monkeypatch.delenv(records.UPDATE_ENV, raising=False)
    CALLS.clear()
    return tmp_path


def read(env, compute=table, key="k1", **kw):
    return records.per_image("ch/x", compute, len(VALUES), inputs_fingerprint=key,
                             keys=["image", "method"], records_dir=env, **kw)


def test_first_read_computes_and_writes_then_checks_a_sample(env):
    full = read(env)
    assert CALLS == [30] and (env / "ch" / "x.csv.gz").exists() and (env / "ch" / "x.json").exists()
    again = read(env, sample=5)
    assert CALLS == [30, 5]  # only the sample is recomputed
    pd.testing.assert_frame_equal(again.reset_index(drop=True), full, check_dtype=False)
    idx = records.sample_images("ch/x", 30, 5)
    assert len(set(idx)) == 5 and list(idx) == sorted(idx)
    assert list(idx) != [0, 1, 2, 3, 4]  # a random sample, not the first images


def test_a_change_in_the_computation_fails_naming_rows(env):
    read(env)
    with pytest.raises(records.RecordsError, match="differ from the committed records"):
        read(env, compute=lambda idx: table(idx, shift=0.1))
    read(env, compute=lambda idx: table(idx, shift=1e-4))  # float noise passes


def test_excluded_rows_are_not_checked(env):
    read(env)

    def other_b(idx):
        t = table(idx)
        t.loc[t["method"] == "b", "score"] += 5.0
        return t

    read(env, compute=other_b, exclude={"method": ["b"]})
    with pytest.raises(records.RecordsError):
        read(env, compute=other_b)


def test_a_bounded_share_of_differing_rows_passes_and_more_fails(env):
    read(env)

    def one_off(idx):  # one of the 2 * len(idx) live rows differs
        t = table(idx)
        t.loc[0, "score"] += 5.0
        return t

    read(env, compute=one_off, sample=5, max_bad_share=0.1)  # 1 of 10 rows: allowed
    with pytest.raises(records.RecordsError, match="1 of 10 live rows"):
        read(env, compute=one_off, sample=5, max_bad_share=0.05)
    with pytest.raises(records.RecordsError):  # a real change moves every row
        read(env, compute=lambda idx: table(idx, shift=0.1), sample=5, max_bad_share=0.1)


def test_stale_inputs_are_refused_and_update_env_rewrites(env, monkeypatch):
    read(env)
    with pytest.raises(records.RecordsError, match="other inputs"):
        read(env, key="k2")
    monkeypatch.setenv(records.UPDATE_ENV, "1")
    read(env, key="k2")
    monkeypatch.delenv(records.UPDATE_ENV)
    read(env, key="k2")


def test_recompute_env_computes_everything_and_writes_nothing(env, monkeypatch):
    monkeypatch.setenv("BNN_SALIENCY_RECOMPUTE", "1")
    read(env)
    assert CALLS == [30] and not (env / "ch").exists()
    monkeypatch.setenv(records.UPDATE_ENV, "1")  # as make notebooks sets both: writes
    read(env)
    assert (env / "ch" / "x.csv.gz").exists()


def test_tampered_records_fail(env):
    read(env)
    path = env / "ch" / "x.csv.gz"
    stored = pd.read_csv(path)
    stored["score"] = stored["score"] + 0.5
    with gzip.open(path, "wt") as fh:
        stored.to_csv(fh, index=False)
    with pytest.raises(records.RecordsError):
        read(env)


def test_fingerprint_tracks_content():
    a = np.ones((2, 3), np.float32)
    assert records.fingerprint(a, 1) == records.fingerprint(a.copy(), 1)
    assert records.fingerprint(a, 1) != records.fingerprint(a + 1, 1)
    assert records.fingerprint(a, 1) != records.fingerprint(a, 2)


def test_fingerprint_ignores_where_a_function_lives():
    """Moving code between modules keeps the committed records valid; renaming does not."""
    def make(module, name):
        fn = eval("lambda: None")
        fn.__module__, fn.__qualname__, fn.__name__ = module, name, name
        return fn

    here, moved = make("pkg.old", "run_scores"), make("pkg.study.new", "run_scores")
    renamed = make("pkg.old", "other_scores")
    x = np.arange(3.0)
    assert records.fingerprint(here, x) == records.fingerprint(moved, x)
    assert records.fingerprint(here, x) != records.fingerprint(renamed, x)
    assert records.fingerprint(here, x) != records.fingerprint(here, x + 1)


def test_string_keys_that_look_missing_round_trip(env):
    """A key value such as "nan" (a way of scoring constant maps) is a string, not a missing
    value, and a NaN score matches a NaN score."""
    def labelled(idx):
        return pd.DataFrame([{"image": k, "method": m, "score": np.nan if m == "nan" else 1.0}
                             for k in range(len(idx)) for m in ("nan", "NA", "zero")])
    full = read(env, compute=labelled)
    again = read(env, compute=labelled, sample=3)
    assert sorted(set(again["method"])) == ["NA", "nan", "zero"]
    pd.testing.assert_frame_equal(again.reset_index(drop=True), full, check_dtype=False)
