"""Citation metadata agrees everywhere: CITATION.cff, .zenodo.json, pyproject.toml, _config.yml
and references.bib.

The study's title, version, license, authors and repository are the same in every file that
names them, and the paper it replicates (Widdicombe & Julier, arXiv:2106.12569, ICML 2021
workshop, June 2021) is dated 2021 wherever it is cited. The checks are functions of the
parsed files, so the tests feed them broken copies to show that each can fail.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import pytest
import yaml
from pybtex.database import parse_string

ROOT = Path(__file__).resolve().parents[1]
PAPER_ARXIV = "2106.12569"
PAPER_YEAR = 2021
PAPER_TITLE = "Gradient-Based Interpretability Methods and Binarized Neural Networks"
PAPER_AUTHORS = [("Widdicombe", "Amy"), ("Julier", "Simon J.")]
PAPER_KEY = "widdicombe2021"
OLD_PAPER_KEY = "widdicombe2020"  # the paper's old, misdated key: must be gone
ZENODO_RELATIONS = {"isSupplementTo", "references"}


def load_all() -> dict:
    return {
        "cff": yaml.safe_load((ROOT / "CITATION.cff").read_text()),
        "zenodo": json.loads((ROOT / ".zenodo.json").read_text()),
        "pyproject": tomllib.loads((ROOT / "pyproject.toml").read_text()),
        "config": yaml.safe_load((ROOT / "_config.yml").read_text()),
    }


def _cff_name(person: dict) -> str:
    if "family-names" in person:
        return f"{person['family-names']}, {person.get('given-names', '')}".strip(", ")
    return person.get("name", "")


def _license(value) -> str:
    if isinstance(value, dict):  # pyproject {text = ...} / zenodo {"id": ...}
        value = value.get("text") or value.get("id") or ""
    return str(value).strip().upper()


def metadata_problems(cff: dict, zenodo: dict, pyproject: dict, config: dict) -> list[str]:
    """Disagreements between the study's metadata files; empty when they agree."""
    problems = []
    project = pyproject.get("project", {})

    def agree(what, values: dict):
        if len({json.dumps(v, sort_keys=True) for v in values.values()}) != 1:
            problems.append(f"{what} differs: " + "; ".join(f"{k}={v!r}" for k, v in values.items()))

    agree("title", {"CITATION.cff": cff.get("title"), ".zenodo.json": zenodo.get("title"),
                    "_config.yml": config.get("title")})
    agree("version", {"CITATION.cff": str(cff.get("version")),
                      ".zenodo.json": str(zenodo.get("version")),
                      "pyproject.toml": str(project.get("version"))})
    agree("license", {"CITATION.cff": _license(cff.get("license")),
                      ".zenodo.json": _license(zenodo.get("license")),
                      "pyproject.toml": _license(project.get("license"))})
    agree("authors", {"CITATION.cff": [_cff_name(a) for a in cff.get("authors", [])],
                      ".zenodo.json": [c.get("name") for c in zenodo.get("creators", [])],
                      "pyproject.toml": [a.get("name") for a in project.get("authors", [])]})
    zenodo_urls = [r.get("identifier") for r in zenodo.get("related_identifiers", [])
                   if str(r.get("identifier", "")).startswith("https://github.com/")]
    agree("repository", {"CITATION.cff": cff.get("repository-code"),
                         ".zenodo.json": zenodo_urls[0] if zenodo_urls else None,
                         "pyproject.toml": project.get("urls", {}).get("Repository"),
                         "_config.yml": config.get("repository", {}).get("url")})
    if _license(cff.get("license")) != "MIT":
        problems.append("the code's license is not MIT")
    if "CC-BY-4.0" not in zenodo.get("description", ""):
        problems.append(".zenodo.json's description does not say the weights are CC-BY-4.0")
    for field in ("upload_type", "creators", "title", "description"):
        if not zenodo.get(field):
            problems.append(f".zenodo.json has no {field}")

    papers = [r for r in cff.get("references", []) + [cff.get("preferred-citation") or {}]
              if any(PAPER_ARXIV in str(i.get("value")) for i in r.get("identifiers", []))
              or PAPER_ARXIV in str(r.get("url", ""))]
    if not papers:
        problems.append(f"CITATION.cff does not reference the paper (arXiv:{PAPER_ARXIV})")
    for paper in papers:
        if paper.get("year") != PAPER_YEAR:
            problems.append(f"CITATION.cff dates the paper {paper.get('year')}, not {PAPER_YEAR}")
        if paper.get("title") != PAPER_TITLE:
            problems.append(f"CITATION.cff titles the paper {paper.get('title')!r}")
        authors = [(a.get("family-names"), a.get("given-names")) for a in paper.get("authors", [])]
        if authors != PAPER_AUTHORS:
            problems.append(f"CITATION.cff gives the paper's authors as {authors}")
    related = [r for r in zenodo.get("related_identifiers", [])
               if r.get("identifier") in (f"arXiv:{PAPER_ARXIV}", PAPER_ARXIV)]
    if not related or related[0].get("relation") not in ZENODO_RELATIONS:
        problems.append(f".zenodo.json does not relate the record to arXiv:{PAPER_ARXIV} "
                        f"({' or '.join(sorted(ZENODO_RELATIONS))})")
    return problems


def bib_problems(bib_text: str) -> list[str]:
    """What is wrong with the paper's entry in references.bib; empty when it is right."""
    entries = parse_string(bib_text, "bibtex").entries
    entry = entries.get(PAPER_KEY)
    if entry is None:
        return [f"references.bib has no entry {PAPER_KEY}"]
    problems = []
    fields = entry.fields
    if fields.get("year") != str(PAPER_YEAR):
        problems.append(f"{PAPER_KEY} has year {fields.get('year')}, not {PAPER_YEAR}")
    if fields.get("eprint") != PAPER_ARXIV:
        problems.append(f"{PAPER_KEY} has eprint {fields.get('eprint')}, not {PAPER_ARXIV}")
    if str(fields.get("archivePrefix", "")).lower() != "arxiv":
        problems.append(f"{PAPER_KEY} has no archivePrefix arXiv")
    if fields.get("title") != PAPER_TITLE:
        problems.append(f"{PAPER_KEY} has title {fields.get('title')!r}")
    authors = [(" ".join(p.last_names), " ".join(p.first_names + p.middle_names))
               for p in entry.persons.get("author", [])]
    if authors != PAPER_AUTHORS:
        problems.append(f"{PAPER_KEY} has authors {authors}")
    if OLD_PAPER_KEY in entries:
        problems.append(f"references.bib still defines the misdated key {OLD_PAPER_KEY}; "
                        f"cite {PAPER_KEY}")
    return problems


def test_metadata_agrees():
    problems = metadata_problems(**load_all())
    assert not problems, "; ".join(problems)


def test_references_bib_dates_the_paper_2021():
    problems = bib_problems((ROOT / "references.bib").read_text())
    assert not problems, "; ".join(problems)


def _cff_paper(m):
    return m["cff"]["references"][0]


BROKEN = {
    "cff title": (lambda m: m["cff"].update(title="Another title"), "title differs"),
    "zenodo version": (lambda m: m["zenodo"].update(version="0.2.0"), "version differs"),
    "pyproject license": (lambda m: m["pyproject"]["project"].update(license={"text": "Apache-2.0"}),
                          "license differs"),
    "zenodo creators": (lambda m: m["zenodo"].update(creators=[{"name": "Someone"}]),
                        "authors differs"),
    "pyproject authors": (lambda m: m["pyproject"]["project"].pop("authors"), "authors differs"),
    "config url": (lambda m: m["config"]["repository"].update(url="https://github.com/x/y"),
                   "repository differs"),
    "weights license": (lambda m: m["zenodo"].update(description="MIT only"), "CC-BY-4.0"),
    "paper 2020": (lambda m: _cff_paper(m).update(year=2020), "dates the paper 2020"),
    "paper missing": (lambda m: m["cff"].update(references=[]), "does not reference the paper"),
    "paper authors": (lambda m: _cff_paper(m)["authors"].pop(), "paper's authors"),
    "zenodo arXiv": (lambda m: m["zenodo"].update(related_identifiers=[]), "arXiv:2106.12569"),
}


@pytest.mark.parametrize("breakage", BROKEN, ids=str)
def test_each_metadata_check_catches_a_broken_copy(breakage):
    break_it, expected = BROKEN[breakage]
    metadata = copy.deepcopy(load_all())
    break_it(metadata)
    problems = metadata_problems(**metadata)
    assert any(expected in p for p in problems), f"{breakage!r} went unnoticed: {problems}"


@pytest.mark.parametrize("old, new, expected", [
    ("year          = {2021}", "year          = {2020}", "has year 2020"),
    ("eprint        = {2106.12569}", "eprint        = {2106.1256}", "has eprint 2106.1256,"),
    ("@inproceedings{widdicombe2021,", "@inproceedings{widdicombe2021x,", "no entry widdicombe2021"),
])
def test_bib_check_catches_a_broken_copy(old, new, expected):
    text = (ROOT / "references.bib").read_text()
    assert old in text
    broken = text.replace(old, new, 1)  # the first occurrence is the widdicombe2021 entry
    assert any(expected in p for p in bib_problems(broken)), bib_problems(broken)


def test_bib_check_catches_the_old_key():
    text = (ROOT / "references.bib").read_text()
    start = text.index("@inproceedings{widdicombe2021,")
    end = text.index("\n}", start) + 2
    stale = text + "\n" + text[start:end].replace("widdicombe2021", "widdicombe2020")
    assert any("misdated key widdicombe2020" in p for p in bib_problems(stale))


def test_no_page_cites_the_old_key_or_dates_the_paper_2020():
    for page in sorted((ROOT / "book").glob("*.md")):
        text = page.read_text()
        assert OLD_PAPER_KEY not in text, f"{page.name} cites {OLD_PAPER_KEY}"
        assert "Julier 2020" not in text, f"{page.name} dates the paper 2020"
