"""Notebook housekeeping: the chapters' common set-up (:func:`quiet`), tables shown without
row numbers (:func:`labelled`), and stored chapter notebooks keep text outputs only.

Figures show dataset images (CIFAR-10, ImageNet samples) or maps computed from them, which must
not be committed; they are rendered when the book is built. nbval does not compare images, so
stripping them loses no check. ``python -m bnn_saliency.notebooks strip book/*.ipynb``.
"""

from __future__ import annotations

import sys

import nbformat

IMAGE_PREFIXES = ("image/", "application/papermill.record/image/")


def quiet() -> None:
    """The one output set-up of every chapter: no TensorFlow C++ log or retracing notices and
    no library warnings in the stored outputs (they vary from run to run and machine to
    machine, and nbval compares outputs)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    for category in (UserWarning, FutureWarning, DeprecationWarning, RuntimeWarning):
        warnings.filterwarnings("ignore", category=category)


def labelled(table):
    """``table`` for display, indexed by its leading label (non-numeric) columns instead of
    bare 0..n-1 row numbers. One label column names the header row's first cell; several
    become a multi-level index. A table already indexed, or without a leading label
    column, is returned as it is."""
    import pandas as pd
    from pandas.api import types

    if not isinstance(table, pd.DataFrame) or not isinstance(table.index, pd.RangeIndex):
        return table
    keys = []
    for column in table.columns:
        dtype = table[column].dtype
        if types.is_numeric_dtype(dtype) and not types.is_bool_dtype(dtype):
            break
        keys.append(column)
    if not keys:
        return table
    if len(keys) == len(table.columns):  # all labels: the first one names the rows
        keys = keys[:1]
    shown = table.set_index(keys)
    return shown.rename_axis(index=None, columns=keys[0]) if len(keys) == 1 else shown


def image_keys(output) -> list[str]:
    return [k for k in output.get("data", {}) if k.startswith(IMAGE_PREFIXES)]


def strip_images(path: str) -> int:
    """Remove image data from every output of a notebook, in place; returns how many."""
    nb = nbformat.read(path, as_version=4)
    removed = 0
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            keys = image_keys(output)
            for key in keys:
                del output["data"][key]
                removed += 1
            if keys and not output["data"]:
                continue  # nothing left: drop the output
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    nbformat.write(nb, path)
    return removed


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] != "strip":
        raise SystemExit("usage: python -m bnn_saliency.notebooks strip NOTEBOOK.ipynb ...")
    for path in argv[1:]:
        print(f"{path}: removed {strip_images(path)} image outputs")


if __name__ == "__main__":
    main(sys.argv[1:])
