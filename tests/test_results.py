"""Chapter records: what a chapter publishes is checked against the committed file."""

import json

import numpy as np
import pandas as pd
import pytest

from bnn_saliency import results, verdicts


def claim(verdict="reproduced", value=0.5):
    return verdicts.Claim("c", "s", "m", value, value - 0.1, value + 0.1, "t", verdict, "sec-x")


def record(tmp_path, value=0.0705, verdict="reproduced", text="gap 0.071 [0.054, 0.062]"):
    rec = results.Record("01_x", tmp_path)
    rec.add("gap", value)
    rec.table("summary", pd.DataFrame({"pair": ["a vs b"], "mean": [value]}))
    rec.add("sentence", text)
    rec.claims([claim(verdict)])
    return rec


def test_first_run_writes_then_identical_rerun_agrees(tmp_path, monkeypatch):
    monkeypatch.delenv(results.UPDATE_ENV, raising=False)
    assert record(tmp_path).check().startswith("wrote")
    saved = json.loads((tmp_path / "01_x.json").read_text())
    assert saved["claims"][0]["verdict"] == "reproduced" and saved["values"]["gap"] == 0.0705
    line = record(tmp_path).check()
    assert "1 claims, 3 recorded entries" in line and "agree" in line
    assert verdicts.load_all(tmp_path)[0]["chapter"] == "01_x"  # the ledger still reads it


def test_float_noise_and_last_digit_flips_pass(tmp_path, monkeypatch):
    monkeypatch.delenv(results.UPDATE_ENV, raising=False)
    record(tmp_path).check()
    record(tmp_path, value=0.0705 + 3e-6, text="gap 0.070 [0.054, 0.061]").check()


@pytest.mark.parametrize("change", [
    dict(value=0.09), dict(verdict="partly"), dict(text="gap 0.091 [0.054, 0.062]"),
    dict(text="gain 0.071 [0.054, 0.062]")])
def test_real_changes_fail_loudly_naming_the_entry(tmp_path, monkeypatch, change):
    monkeypatch.delenv(results.UPDATE_ENV, raising=False)
    record(tmp_path).check()
    with pytest.raises(results.ResultsMismatch) as info:
        record(tmp_path, **change).check()
    message = str(info.value)
    assert "01_x" in message and results.UPDATE_ENV in message
    assert any(key in message for key in ("gap", "verdict", "sentence", "summary"))


def test_missing_and_new_entries_fail_and_update_env_rewrites(tmp_path, monkeypatch):
    monkeypatch.delenv(results.UPDATE_ENV, raising=False)
    record(tmp_path).check()
    rec = record(tmp_path)
    rec.add("new", 1.0)
    with pytest.raises(results.ResultsMismatch, match="new"):
        rec.check()
    monkeypatch.setenv(results.UPDATE_ENV, "1")
    assert rec.check().startswith("wrote")
    monkeypatch.delenv(results.UPDATE_ENV)
    assert "agree" in rec.check()


def test_differences_oracle():
    tol = results.ATOL + results.RTOL  # at a committed value of 1
    assert results.differences(1.0, 1.0 + tol - 1e-9) == []
    assert results.differences(1.0, 1.0 + 1.5 * tol) != []
    assert results.differences([1, 2], [1, 2, 3]) == [("", "2 entries", "3 entries")]
    assert results.differences({"a": "x 1,000 y"}, {"a": "x 1,001 y"}) == []
    assert results.differences(True, False) != [] and results.differences(None, None) == []
    nan_table = results._plain(pd.DataFrame({"v": [np.nan, 1.0]}))
    assert nan_table["data"] == [[None], [1.0]]


def test_entries_are_named_once_and_claims_are_required(tmp_path):
    rec = results.Record("01_x", tmp_path)
    rec.add("a", 1)
    with pytest.raises(KeyError, match="twice"):
        rec.add("a", 2)
    with pytest.raises(RuntimeError, match="claims"):
        rec.check()
    with pytest.raises(TypeError):
        rec.claims([])


def test_timing_claims_check_only_text_and_verdict(tmp_path, monkeypatch):
    monkeypatch.delenv(results.UPDATE_ENV, raising=False)
    for value, verdict, ok in [(0.5, "reproduced", True), (0.9, "reproduced", True),
                               (0.9, "partly", False)]:
        rec = results.Record("01_t", tmp_path)
        rec.claims([claim(verdict, value)], timings=("c",))
        if ok:
            rec.check()
        else:
            with pytest.raises(results.ResultsMismatch, match="verdict"):
                rec.check()
    with pytest.raises(KeyError, match="no claim"):
        results.Record("01_t", tmp_path).claims([claim()], timings=("other",))


def test_imagenet_mode_never_touches_the_committed_twin_results(tmp_path, monkeypatch):
    monkeypatch.delenv(results.UPDATE_ENV, raising=False)
    record(tmp_path).check()
    monkeypatch.setenv("BNN_SALIENCY_MODELS", "imagenet")
    rec = record(tmp_path, value=0.9, verdict="partly")  # other models, other numbers
    assert rec.check().startswith("wrote") and rec.path == tmp_path / "imagenet" / "01_x.json"
    monkeypatch.delenv("BNN_SALIENCY_MODELS")
    assert "agree" in record(tmp_path).check()
