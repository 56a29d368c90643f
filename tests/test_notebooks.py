"""Tables shown in the book carry labels, not bare row numbers."""

import pandas as pd

from bnn_saliency import notebooks, results


def test_labelled_indexes_by_the_leading_label_columns():
    df = pd.DataFrame({"metric": ["a", "a", "b"], "pair": ["x", "y", "x"],
                       "mean": [0.1, 0.2, 0.3], "note": ["p", "q", "r"]})
    shown = notebooks.labelled(df)
    assert list(shown.index.names) == ["metric", "pair"]
    assert list(shown.columns) == ["mean", "note"]
    assert shown.loc[("b", "x"), "mean"] == 0.3


def test_labelled_one_label_names_the_header_and_bools_are_labels():
    df = pd.DataFrame({"both correct": [True, False], "mean": [1.0, 2.0]})
    shown = notebooks.labelled(df)
    assert shown.index.tolist() == [True, False] and shown.index.name is None
    assert shown.columns.name == "both correct"
    html = shown.to_html()
    assert "<th>0</th>" not in html and "<th>1</th>" not in html


def test_labelled_leaves_numeric_first_or_indexed_tables_and_takes_one_of_all_labels():
    numeric_first = pd.DataFrame({"steps": [4, 8], "error": [0.1, 0.2]})
    assert notebooks.labelled(numeric_first) is numeric_first
    indexed = numeric_first.set_index("steps")
    assert notebooks.labelled(indexed) is indexed
    words = pd.DataFrame({"network": ["a", "b"], "file": ["f", "g"]})
    assert notebooks.labelled(words).index.tolist() == ["a", "b"]


def test_record_table_records_the_plain_table_and_shows_it_labelled(tmp_path):
    rec = results.Record("00_x", tmp_path)
    df = pd.DataFrame({"model": ["fp", "bnn"], "mean": [0.5, 0.25]})
    shown = rec.table("summary", df)
    assert shown.index.tolist() == ["fp", "bnn"]
    assert rec.values["summary"]["index"] == ["0", "1"]
    assert rec.values["summary"]["columns"] == ["model", "mean"]
