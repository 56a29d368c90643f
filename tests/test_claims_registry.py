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
    below = registered(entry["id"], "m", (bound - 2, bound - 3, bound - 1))
    above = registered(entry["id"], "m", (bound + 2, bound + 1, bound + 3))
    assert below.claim == entry["current_claim"] and below.section == entry["section"]
    assert (below.verdict, above.verdict) == ("reproduced", "not reproduced")
    with pytest.raises(KeyError, match="register the claim"):
        registered("ch99.unregistered", "m", (0, 0, 0))
