"""The pre-registered claims registry (book/claims.yaml) against the claims the chapters test
(book/results/*.json): unique ids, one entry per saved claim, the registered rule renders the
threshold the chapter applied, exactly one primary test per paper claim."""

import collections
import json

import pytest
import yaml

from bnn_saliency.data import PROJECT_ROOT
from bnn_saliency.verdicts import registered, rule_from_spec

REGISTRY = yaml.safe_load((PROJECT_ROOT / "book" / "claims.yaml").read_text())
ENTRIES = REGISTRY["claims"]
SAVED = [(rec["chapter"], c) for p in sorted((PROJECT_ROOT / "book" / "results").glob("*.json"))
         for rec in [json.loads(p.read_text())] for c in rec["claims"]]
FIELDS = ("id", "chapter", "section", "family", "current_claim", "source", "statistic", "unit",
          "rule", "models", "calibration")


def test_entries_are_complete_and_ids_unique():
    counts = collections.Counter(e["id"] for e in ENTRIES)
    assert not [i for i, n in counts.items() if n > 1]
    for e in ENTRIES:
        assert not [f for f in FIELDS if f not in e], e["id"]
        assert e["family"] in ("primary", "secondary", "own"), e["id"]
        assert e["id"].startswith(f"ch{e['chapter'][:2]}."), e["id"]
        if "contrasts" in e:
            names = [c["name"] for c in e["contrasts"]]
            assert names in ([], ["cross_seed", "seed_baseline", "accuracy_matched"]), e["id"]


def test_one_primary_test_per_paper_claim_and_holm_for_the_family():
    primary = collections.Counter(e["paper_claim"] for e in ENTRIES if e["family"] == "primary")
    assert sorted(primary) == [1, 2, 3, 4, 5, 6] and set(primary.values()) == {1}
    assert REGISTRY["multiplicity"]["primary"]["method"] == "holm"
    for e in ENTRIES:
        if e["family"] == "primary":  # one threshold each, for the bootstrap p-value
            assert e["rule"]["kind"] in ("above", "below"), e["id"]


def test_every_saved_claim_has_exactly_one_entry_in_its_chapter_and_section():
    by_key = collections.defaultdict(list)
    for e in ENTRIES:
        by_key[(e["chapter"], e["current_claim"])].append(e)
    for chapter, claim in SAVED:
        hits = by_key[(chapter, claim["claim"])]
        assert len(hits) == 1, f"{chapter}: {claim['claim']!r} has {len(hits)} registry entries"
        assert hits[0]["section"] == claim["section"]
    assert len(ENTRIES) == len(SAVED), "registry entries without a saved claim"


@pytest.mark.parametrize("chapter,claim", SAVED, ids=[c["claim"][:40] for _, c in SAVED])
def test_registered_rule_renders_the_threshold_the_chapter_applied(chapter, claim):
    entry = next(e for e in ENTRIES if (e["chapter"], e["current_claim"]) == (chapter,
                                                                            claim["claim"]))
    spec, threshold = entry["rule"], None
    if isinstance(spec["threshold"], str):  # derived from data (e.g. a seed bound)
        saved = claim["threshold"]
        threshold = float(saved.split(spec.get("name", spec["threshold"]), 1)[1]
                          .split()[0].rstrip(";"))
    assert rule_from_spec(spec, threshold).text == claim["threshold"], entry["id"]


def test_a_chapter_judges_a_registered_claim_by_the_registered_rule():
    entry = next(e for e in ENTRIES if isinstance(e["rule"]["threshold"], (int, float))
                 and e["rule"]["kind"] == "below")
    bound = float(entry["rule"]["threshold"])
    extra = {"replicates": [bound - 1] * 99, "matched": "not shipped"}
    below = registered(entry["id"], "m", (bound - 2, bound - 3, bound - 1), **extra)
    above = registered(entry["id"], "m", (bound + 2, bound + 1, bound + 3), **extra)
    assert below.claim == entry["current_claim"] and below.section == entry["section"]
    assert (below.verdict, above.verdict) == ("reproduced", "not reproduced")
    assert below.claim_id == entry["id"] and below.to_dict()["claim_id"] == entry["id"]
    with pytest.raises(KeyError, match="register the claim"):
        registered("ch99.unregistered", "m", (0, 0, 0))


def test_primary_claims_carry_a_p_value_and_fp_vs_bnn_claims_their_matched_verdict():
    entry = next(e for e in ENTRIES if e["id"] == "ch01.gradient_alike")
    assert entry["family"] == "primary" and entry["rule"] == {"kind": "below", "threshold": 0.1}
    ci = (0.05, 0.03, 0.07)
    # 99 replicates all below the threshold: the two-sided p-value is 2 / 100
    claim = registered(entry["id"], "gap", ci, interval="seeds>images",
                       replicates=[0.05] * 99, matched=(0.12, 0.11, 0.13))
    assert claim.p_value == pytest.approx(0.02) and claim.interval == "seeds>images"
    assert claim.verdict == "reproduced"
    assert claim.matched == {"value": 0.12, "low": 0.11, "high": 0.13,
                             "verdict": "not reproduced"}   # judged by the same rule
    missing = registered(entry["id"], "gap", ci, replicates=[0.05], matched="no BNN seed 1")
    assert missing.matched == {"missing": "no BNN seed 1"}
    with pytest.raises(ValueError, match="replicates"):
        registered(entry["id"], "gap", ci, matched="x")
    with pytest.raises(ValueError, match="accuracy_matched"):
        registered(entry["id"], "gap", ci, replicates=[0.05])
    own = next(e for e in ENTRIES if e["family"] == "own" and not any(
        c["name"] == "accuracy_matched" for c in e.get("contrasts", [])))
    with pytest.raises(ValueError, match="no accuracy_matched"):
        registered(own["id"], "m", ci, threshold=0.1, matched=(0, 0, 0))
    plain = registered(own["id"], "m", ci, threshold=0.1)
    assert set(plain.to_dict()) == {"claim", "source", "measure", "value", "low", "high",
                                    "threshold", "verdict", "section", "claim_id"}
