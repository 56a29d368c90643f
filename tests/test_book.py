"""The book's structure: every paired chapter is in sync and listed in the table of contents."""

from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PAIRED = sorted(p for p in BOOK.glob("*.md") if p.read_text().startswith("---\njupytext:"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("md", PAIRED, ids=lambda p: p.stem)
def test_pair_in_sync(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{md.name} has no paired {ipynb.name}: run `make notebooks`"
    text_nb, ipynb_nb = jupytext.read(md), jupytext.read(ipynb)
    assert _cells(text_nb) == _cells(ipynb_nb), (
        f"{md.name} and {ipynb.name} differ: run `jupytext --sync book/{md.name}` and re-execute")


@pytest.mark.parametrize("md", PAIRED, ids=lambda p: p.stem)
def test_stored_outputs_exist(md):
    nb = jupytext.read(md.with_suffix(".ipynb"))
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), (
        f"{md.stem}.ipynb is not fully executed: run `make notebooks`")


def test_toc_lists_existing_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    missing = [f for f in files if not (ROOT / f"{f}.md").exists()]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    for md in PAIRED:
        assert f"book/{md.stem}" in files, f"{md.name} is not listed in _toc.yml"


@pytest.mark.parametrize("md", PAIRED, ids=lambda p: p.stem)
def test_stored_notebooks_hold_no_images(md):
    """Figures show dataset images or maps of them: rendered at build time, never committed."""
    from bnn_saliency.notebooks import image_keys

    nb = jupytext.read(md.with_suffix(".ipynb"))
    found = [k for c in nb.cells for o in c.get("outputs", []) for k in image_keys(o)]
    assert not found, f"{md.stem}.ipynb stores images {found[:3]}: run `make notebooks`"
