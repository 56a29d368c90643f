"""The claims ledger's table and figure (bnn_saliency.study.ledger), on scratch result files."""

from __future__ import annotations

import docutils.nodes
import pytest
from markdown_it import MarkdownIt

from bnn_saliency import verdicts
from bnn_saliency.results import RESULTS_DIR
from bnn_saliency.study import appendix_models, ledger


def _save(tmp_path, chapter="09_x", **fields):
    claim = dict(claim="a claim", source="s", measure="m", value=0.5, low=0.4, high=0.6,
                 threshold="t", verdict="partly", section="sec-x")
    claim.update(fields)
    verdicts.save(chapter, [verdicts.Claim(**claim)], tmp_path)


def _cells(markdown: str) -> list[list[str]]:
    """The table's cells as plain text, parsed by markdown-it as MyST does (GFM tables, HTML)."""
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(markdown)
    rows, row = [], None
    for i, tok in enumerate(tokens):
        if tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open"):
            inline = tokens[i + 1]
            row.append("".join(child.content for child in inline.children
                               if child.type in ("text", "code_inline")))
        elif tok.type == "tr_close":
            rows.append(row)
    return rows


def test_md_escape_makes_markdown_syntax_literal():
    text = r"Spearman(|map|) *x* _y_ `z` <b> [l](u) $\alpha$ ~s~ a\b &amp; W&J"
    assert ledger.md_escape("two\nlines") == "two lines"
    parsed = _cells(f"| h |\n|---|\n| {ledger.md_escape(text)} |")
    assert parsed[1] == [text]


def test_ledger_claim_with_pipes_round_trips(tmp_path):
    """A "|" in a claim, measure or threshold stays a "|" (it used to end the cell, and was
    replaced by "/")."""
    _save(tmp_path, claim="Spearman(|map|) of FP and BNN agree",
          measure="seed gap: Spearman(|map|)", threshold="CI high < 0.1 | CI low > -0.1")
    rows = _cells(ledger.ledger_markdown(tmp_path))
    assert len(rows) == 2 and all(len(r) == 4 for r in rows), rows  # header + one claim
    verdict, claim, value, source = rows[1]
    assert verdict == "partly"
    assert claim.startswith("Spearman(|map|) of FP and BNN agree")
    assert claim.endswith("seed gap: Spearman(|map|)")
    assert "0.500" in value and "[0.400, 0.600]" in value
    assert value.endswith("CI high < 0.1 | CI low > -0.1")
    assert source.startswith("s, ")


def test_ledger_markdown_renders_in_myst(tmp_path):
    """Through MyST's parser (as the ledger page renders it; docutils alone, so the Sphinx
    {ref} role is only recognised as a role): one table of four columns, the verdict first as
    a coloured badge around its word, the pipes kept."""
    from docutils.core import publish_doctree
    from myst_parser.parsers.docutils_ import Parser

    _save(tmp_path, claim="Spearman(|map|) agrees", verdict="not reproduced")
    doc = publish_doctree(ledger.ledger_markdown(tmp_path), parser=Parser(), settings_overrides={
        "report_level": 5, "halt_level": 5, "myst_enable_extensions": ["dollarmath"]})
    for message in list(doc.findall(docutils.nodes.system_message)):
        message.parent.remove(message)
    tables = list(doc.findall(docutils.nodes.table))
    assert len(tables) == 1
    assert len(list(tables[0].findall(docutils.nodes.colspec))) == 4
    first_row = list(tables[0].findall(docutils.nodes.row))[1]
    first_cell = list(first_row.findall(docutils.nodes.entry))[0]
    raw = "".join(node.astext() for node in first_cell.findall(docutils.nodes.raw))
    assert ledger.VERDICT_COLORS["not reproduced"] in raw and raw.startswith("<span")
    words = "".join(node.astext() for node in first_cell.findall(docutils.nodes.Text)
                    if not isinstance(node.parent, docutils.nodes.raw))
    assert words.strip() == "not reproduced"  # outside the tags: kept where HTML is dropped
    text = tables[0].astext()
    assert "Spearman(|map|) agrees" in text and "\\|" not in text and "{ref}" not in text


def test_ledger_markdown_puts_the_verdict_first(tmp_path):
    _save(tmp_path, verdict="reproduced")
    header, row = _cells(ledger.ledger_markdown(tmp_path))
    assert header[0] == "verdict" and row[0] == "reproduced"
    assert "{ref}`ch. 9 <sec-x>`" in ledger.ledger_markdown(tmp_path)
    assert ledger.ledger_markdown(tmp_path / "empty").startswith("_No chapter")


def test_verdict_counts_and_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    verdicts.save("01_a", [verdicts.Claim("c1", "s", "m", 1, 0, 2, "t", "reproduced", "sec-a"),
                         verdicts.Claim("c2", "s", "m", 1, 0, 2, "t", "not reproduced", "sec-a")],
                tmp_path)
    _save(tmp_path, chapter="02_b", verdict="partly")
    counts = ledger.verdict_counts(tmp_path)
    assert counts.index.tolist() == ["01_a", "02_b"]
    assert counts.columns.tolist() == list(verdicts.CLAIM_VERDICTS)
    assert counts.loc["01_a"].tolist() == [1, 0, 1, 0] and counts.loc["02_b"].tolist() == [0, 1, 0, 0]
    fig = ledger.verdict_figure(counts)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1 a", "2 b"]
    widths = sorted(round(p.get_width()) for p in ax.patches)
    assert widths == [0] * 5 + [1] * 3  # one segment per (chapter, verdict), empty ones 0 wide
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(verdicts.CLAIM_VERDICTS)
    assert ledger.verdict_counts(tmp_path / "empty").empty


def test_ledger_on_the_committed_results():
    """The real book/results/*.json: every claim a row of four cells, every chapter a bar."""
    if not list(RESULTS_DIR.glob("*.json")):
        pytest.skip("no committed results")
    claims = ledger.ledger()
    rows = _cells(ledger.ledger_markdown())
    assert len(rows) == len(claims) + 1 and all(len(r) == 4 for r in rows)
    assert [r[0] for r in rows[1:]] == claims["verdict"].tolist()
    assert ledger.verdict_counts().to_numpy().sum() == len(claims)


def test_twin_table_accuracy_first_indexed_by_name(tmp_path):
    import json

    record = {"name": "vgg-fp-s0", "family": "vgg", "variant": "fp", "width": 32,
              "binarization": "full precision", "params": 10, "random_labels": False,
              "train_images": 100, "epochs": 2, "train_accuracy": 0.9, "test_accuracy": 0.8,
              "wall_time_s": 120.0, "weights_file": "vgg-fp-s0.weights.h5",
              "weights_sha256": "0" * 64}
    (tmp_path / "vgg-fp-s0.json").write_text(json.dumps(record))
    table = appendix_models.twin_table(tmp_path)
    assert table.columns[:2].tolist() == ["test acc", "train acc"]
    assert table.index.tolist() == ["vgg-fp-s0"]
    assert table.loc["vgg-fp-s0", "variant"] == "fp" and table.loc["vgg-fp-s0", "train min"] == 2.0
    html = table.to_html()
    assert "<th>twin</th>" in html and "<th>0</th>" not in html  # named rows, no RangeIndex


def test_primary_claims_holm_adjust_the_family_with_p_1_for_tests_not_yet_rerun(tmp_path):
    registry = tmp_path / "claims.yaml"
    entries = [{"id": f"ch0{i}.c", "chapter": f"0{i}_x", "current_claim": f"claim {i}",
                "family": "primary", "paper_claim": i} for i in (1, 2, 3)]
    entries.append({"id": "ch04.s", "chapter": "04_x", "current_claim": "other",
                    "family": "secondary"})
    import yaml
    registry.write_text(yaml.safe_dump({"claims": entries}))
    _save(tmp_path, "01_x", claim="claim 1", claim_id="ch01.c", p_value=0.01,
          matched={"value": 0.1, "low": 0.0, "high": 0.2, "verdict": "partly"})
    _save(tmp_path, "02_x", claim="claim 2", claim_id="ch02.c", p_value=0.02,
          matched={"missing": "no seed 1"})
    _save(tmp_path, "03_x", claim="claim 3")   # a v1 result: no p-value
    table = ledger.primary_claims(tmp_path, registry)
    assert table["claim id"].tolist() == ["ch01.c", "ch02.c", "ch03.c"]
    assert table["accuracy-matched"].tolist() == ["partly", "missing", "not run"]
    # Holm over (0.01, 0.02, 1): 3 * 0.01, max(2 * 0.02, 0.03), 1
    assert table["p (Holm)"].tolist() == pytest.approx([0.03, 0.04, 1.0])
    assert table["protocol"].iloc[2].startswith("v1")


def test_ledger_says_when_a_precondition_is_absent(tmp_path):
    pre = {"claim": "ch03.gradcam_blank_on_bnn", "holds": False, "rule_verdict": "partly"}
    _save(tmp_path, verdict="precondition absent", threshold="CI low > 0", precondition=pre)
    _save(tmp_path, chapter="10_y", precondition={**pre, "holds": True})
    _save(tmp_path, chapter="11_z", verdict="precondition absent",
          precondition={**pre, "claim": "ch99.unregistered"})
    rows = ledger.ledger(tmp_path).set_index("chapter")["threshold"]
    assert rows["09_x"] == ("CI low > 0; precondition absent (claim 5 of the paper not "
                            "reproduced); the rule's verdict: partly")
    assert rows["10_y"] == "t"
    assert "(the claim it rests on not reproduced)" in rows["11_z"]
    assert "white-space:normal" in ledger.verdict_badge("precondition absent")
    assert "white-space:nowrap" in ledger.verdict_badge("not reproduced")
