"""Experiment records: per-image tables computed once, committed, and spot-checked live.

The heaviest steps of a chapter (e.g. the randomization cascades of chapter 4) produce compact
per-image tables of numbers, no maps. ``make results`` computes them in full and writes them
to ``book/records/<name>.csv.gz``, with a sidecar ``.json`` holding the fingerprint of the
inputs (model weights, images, parameters) and the code version that produced them. A chapter
then reads them with :func:`per_image`, which

1. refuses records whose inputs fingerprint differs from the current one (the weights, the
   images or the parameters changed: run ``make results``);
2. recomputes a seeded random sample of images live and asserts that those rows agree with
   the records within tolerance (so CI checks the pipeline end to end on every run, and a
   code change that moves the numbers fails loudly, naming the rows);
3. returns the full records.

``BNN_SALIENCY_UPDATE_RECORDS=1`` (set by ``make results``, not by ``make notebooks``)
recomputes and rewrites the records; ``BNN_SALIENCY_RECOMPUTE=1`` alone computes everything
live instead (and writes nothing). The fingerprint names functions without their modules, so
moving code does not invalidate records; changing weights, images or parameters does.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from . import memo
from .data import PROJECT_ROOT

RECORDS_DIR = PROJECT_ROOT / "book" / "records"
#: Set to 1 to recompute and rewrite the records a chapter reads (``make results`` does).
UPDATE_ENV = "BNN_SALIENCY_UPDATE_RECORDS"


class RecordsError(AssertionError):
    """Committed records are stale, or disagree with a live recomputation."""


def fingerprint(*inputs) -> str:
    """A stable hash of models (weights fingerprints), arrays, parameters and the names of the
    functions involved (not their modules: moving code does not invalidate records)."""
    import joblib

    return joblib.hash(memo._key(inputs, stable=True), hash_name="sha1")


def _paths(name: str, records_dir: Path) -> tuple[Path, Path]:
    base = Path(records_dir) / name
    return base.with_suffix(".csv.gz"), base.with_suffix(".json")


def _write(table: pd.DataFrame, name: str, key: str, n_images: int, records_dir: Path) -> None:
    data_path, meta_path = _paths(name, records_dir)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(data_path, index=False, float_format="%.7g",
                 compression={"method": "gzip", "mtime": 0})
    meta = {"name": name, "inputs_fingerprint": key, "n_images": int(n_images),
            "rows": int(len(table)), "columns": list(table.columns),
            "code_version": memo.code_version()}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def sample_images(name: str, n_images: int, sample: int) -> np.ndarray:
    """The seeded image sample checked live for the records ``name`` (sorted indices)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return np.sort(rng.choice(n_images, size=min(sample, n_images), replace=False))


def compare(fresh: pd.DataFrame, stored: pd.DataFrame, keys: Sequence[str], value: str,
            atol: float, rtol: float) -> pd.DataFrame:
    """Rows of ``fresh`` whose ``value`` differs from ``stored`` (matched on ``keys``) beyond
    ``atol + rtol * |stored|``, or that have no stored counterpart. NaN matches NaN."""
    merged = fresh.merge(stored, on=list(keys), how="left", suffixes=("", "_stored"),
                         indicator=True)
    a, b = merged[value].to_numpy(float), merged[f"{value}_stored"].to_numpy(float)
    both_nan = np.isnan(a) & np.isnan(b)
    close = np.abs(a - b) <= atol + rtol * np.abs(b)
    bad = (merged["_merge"] != "both") | ~(both_nan | close)
    return merged.loc[bad, list(keys) + [value, f"{value}_stored"]]


def per_image(name: str, compute: Callable[[np.ndarray], pd.DataFrame], n_images: int, *,
              inputs_fingerprint: str, keys: Sequence[str], value: str = "score",
              sample: int = 4, atol: float = 0.02, rtol: float = 0.02,
              exclude: dict[str, Sequence] | None = None, max_bad_share: float = 0.0,
              records_dir: Path = RECORDS_DIR) -> pd.DataFrame:
    """Read (or compute) the records ``name``; see the module docstring.

    Args:
        name: path of the records under ``book/records/`` without suffix, e.g.
            ``"04_sanity_checks/cascading/vgg-fp-s0"``.
        compute: ``compute(idx) -> DataFrame`` for the images at indices ``idx`` (sorted), with
            an ``image`` column holding indices into ``idx`` order (0..len(idx)-1), as the
            chapter's functions number their images.
        n_images: number of images of the full computation.
        inputs_fingerprint: :func:`fingerprint` of everything the records depend on.
        keys: columns identifying a row (``image`` included); ``value``: the checked column.
        sample: images recomputed live on every read.
        atol, rtol: tolerance of the live check, far above float32 noise on a per-image
            similarity and far below the effects the chapters report.
        exclude: ``column -> values`` of rows the live check skips (say why where used).
        max_bad_share: share of live rows allowed outside the tolerance (say why where used;
            e.g. sign activations that flip on float32 noise from one CPU to another).

    Returns:
        The records, ``image`` holding indices into the full image set.
    """
    if "image" not in keys:
        raise ValueError("keys must include 'image'")
    every = np.arange(n_images)
    data_path, meta_path = _paths(name, records_dir)
    if os.environ.get(UPDATE_ENV) == "1" or (
            not data_path.exists() and os.environ.get(memo.RECOMPUTE_ENV) != "1"):
        table = compute(every)
        _write(table, name, inputs_fingerprint, n_images, records_dir)
        return table
    if os.environ.get(memo.RECOMPUTE_ENV) == "1":
        return compute(every)
    meta = json.loads(meta_path.read_text())
    if meta["inputs_fingerprint"] != inputs_fingerprint or meta["n_images"] != n_images:
        raise RecordsError(
            f"the records {name} were computed for other inputs (weights, images or "
            "parameters changed since); recompute them with `make results` and commit "
            f"{_shown(data_path)}")
    # only an empty field is missing: a key such as the string "nan" stays a string
    stored = pd.read_csv(data_path, keep_default_na=False, na_values=[""])
    idx = sample_images(name, n_images, sample)
    fresh = compute(idx)
    fresh = fresh.assign(image=idx[fresh["image"].to_numpy()])
    for col in keys:  # csv round trip: compare keys as the stored dtypes
        fresh[col] = fresh[col].astype(stored[col].dtype)
    for col, values in (exclude or {}).items():
        fresh = fresh[~fresh[col].isin(list(values))]
    bad = compare(fresh, stored[stored["image"].isin(idx)], keys, value, atol, rtol)
    if len(bad) > max_bad_share * len(fresh):
        raise RecordsError(
            f"{len(bad)} of {len(fresh)} live rows of {name} (images {idx.tolist()}) differ "
            f"from the committed records beyond {atol} + {rtol}|x|:\n"
            f"{bad.head(20).to_string(index=False)}\nIf the change is intended, recompute "
            "with `make results` and commit the records.")
    return stored
