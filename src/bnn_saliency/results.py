"""A chapter's published numbers: recorded as it runs, checked against the committed file.

nbval compares a notebook's stored outputs as text. A number printed to three decimals flips
its last digit between machines whenever it sits near a rounding boundary (float32 results
differ in their last bits with the CPU's kernels and thread count), so rounding cannot make
such outputs comparable. Chapters therefore keep under nbval's comparison only outputs that
are the same on every machine (verdict words, counts, the result of :meth:`Record.check`)
and route their numbers through a :class:`Record`::

    rec = results.Record("01_gradient")
    glue = rec.glue               # myst-nb glue that also records the glued value
    rec.table("summary", df)      # records a table and returns it for display
    rec.claims(rows)              # the chapter's claims (the ledger reads them)
    rec.check()                   # last cell: compare with book/results/01_gradient.json

:meth:`Record.check` compares every recorded entry with ``book/results/<chapter>.json``:
text (verdicts, names) must be identical, numbers (also those inside glued sentences) must
agree within ``atol + rtol * |committed|`` (:data:`ATOL`, :data:`RTOL` unless an entry sets
its own), and nothing may be missing or new. A mismatch raises :class:`ResultsMismatch`
listing every differing entry, so CI fails loudly on a real change. The file is (re)written
instead when ``BNN_SALIENCY_UPDATE_RESULTS=1`` (``make notebooks`` sets it) or when it does
not exist yet.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from .data import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "book" / "results"
UPDATE_ENV = "BNN_SALIENCY_UPDATE_RESULTS"
#: Default tolerance: far above float32 noise (~1e-6 relative) and the discrete events it
#: triggers (one prediction or one blank map in 500 images moves a rate by 0.002; on a BNN a
#: sign activation within float32 noise of 0 flips from one CPU to another and changes that
#: image's map: BNN means and interval ends moved by up to 3.6% between an Intel Xeon and an
#: AMD EPYC), far below the effects the chapters' verdicts rest on.
ATOL, RTOL = 0.01, 0.04
_NUMBER = re.compile(r"(-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?)")


class ResultsMismatch(AssertionError):
    """Freshly computed results differ from the committed ones beyond tolerance."""


def _plain(value):
    """JSON-ready copy: floats rounded to 6 significant digits, NaN -> None, tables split."""
    import pandas as pd

    if isinstance(value, pd.Series):
        value = value.to_frame()
    if isinstance(value, pd.DataFrame):
        split = value.to_dict(orient="split")
        label = (lambda k: " | ".join(map(str, k)) if isinstance(k, tuple) else str(k))
        return {"columns": [label(c) for c in split["columns"]],
                "index": [label(i) for i in split["index"]],
                "data": [[_plain(v) for v in row] for row in split["data"]]}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if not math.isfinite(value) else float(f"{value:.6g}")
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _close(fresh: float, committed: float, atol: float, rtol: float) -> bool:
    return abs(fresh - committed) <= atol + rtol * abs(committed)


def _text_diff(fresh: str, committed: str, atol: float, rtol: float) -> bool:
    """True if two texts differ beyond tolerance: the words must match exactly, the numbers
    in them within tolerance."""
    if fresh == committed:
        return False
    a, b = _NUMBER.split(fresh), _NUMBER.split(committed)
    if len(a) != len(b) or a[0::2] != b[0::2]:
        return True
    return not all(_close(float(x.replace(",", "")), float(y.replace(",", "")), atol, rtol)
                   for x, y in zip(a[1::2], b[1::2]))


def differences(fresh, committed, atol: float = ATOL, rtol: float = RTOL, path: str = ""):
    """Every ``(path, fresh, committed)`` where two recorded values disagree."""
    if isinstance(committed, dict) and isinstance(fresh, dict):
        out = []
        for key in sorted(set(fresh) | set(committed)):
            where = f"{path}/{key}" if path else key
            if key not in committed:
                out.append((where, fresh[key], "<not in the committed results>"))
            elif key not in fresh:
                out.append((where, "<not computed>", committed[key]))
            else:
                out.extend(differences(fresh[key], committed[key], atol, rtol, where))
        return out
    if isinstance(committed, list) and isinstance(fresh, list):
        if len(fresh) != len(committed):
            return [(path, f"{len(fresh)} entries", f"{len(committed)} entries")]
        return [d for i, (f, c) in enumerate(zip(fresh, committed))
                for d in differences(f, c, atol, rtol, f"{path}[{i}]")]
    if isinstance(committed, bool) or isinstance(fresh, bool):
        return [] if fresh is committed else [(path, fresh, committed)]
    if isinstance(committed, (int, float)) and isinstance(fresh, (int, float)):
        return [] if _close(fresh, committed, atol, rtol) else [(path, fresh, committed)]
    if isinstance(committed, str) and isinstance(fresh, str):
        return [(path, fresh, committed)] if _text_diff(fresh, committed, atol, rtol) else []
    return [] if fresh == committed else [(path, fresh, committed)]


def _count(value) -> tuple[int, int]:
    """(numbers, texts) in a recorded value."""
    if isinstance(value, dict):
        parts = [_count(v) for v in value.values()]
    elif isinstance(value, list):
        parts = [_count(v) for v in value]
    elif isinstance(value, bool) or value is None:
        return 0, 0
    elif isinstance(value, (int, float)):
        return 1, 0
    else:
        numbers = len(_NUMBER.findall(value))
        return numbers, int(bool(_NUMBER.sub("", value).strip()))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


class Record:
    """The numbers, tables and claims one chapter publishes (see the module docstring)."""

    def __init__(self, chapter: str, results_dir: Path = RESULTS_DIR):
        from .models.registry import models_mode

        self.chapter = chapter
        # the committed results are the twins'; another mode keeps its own, uncommitted file
        mode = models_mode()
        folder = Path(results_dir) if mode == "twins" else Path(results_dir) / mode
        self.path = folder / f"{chapter}.json"
        self.values: dict = {}
        self.tolerance: dict[str, tuple[float, float]] = {}
        self._claims: list[dict] | None = None
        self._timings: set[str] = set()
        self._checked = False

    def add(self, name: str, value, atol: float = ATOL, rtol: float = RTOL):
        """Record ``value`` (number, text, sequence, dict, DataFrame) under ``name``; returns
        ``value`` unchanged, so ``rec.add("table", df)`` can end a cell and display it."""
        if self._checked:
            raise RuntimeError(f"{self.chapter}: {name!r} is recorded after check(); record "
                               "every entry before the chapter's last check")
        if name in self.values:
            raise KeyError(f"{self.chapter}: {name!r} is recorded twice; give each entry its "
                           "own name")
        self.values[name] = _plain(value)
        self.tolerance[name] = (float(atol), float(rtol))
        return value

    def table(self, name: str, value, atol: float = ATOL, rtol: float = RTOL):
        """Record a table like :meth:`add`; return it for display, indexed by its leading
        label columns (:func:`bnn_saliency.notebooks.labelled`: no bare row numbers)."""
        from .notebooks import labelled

        return labelled(self.add(name, value, atol, rtol))

    def glue(self, name: str, value, display: bool = False, record: bool = True):
        """``myst_nb.glue`` that also records the glued value under ``glue/<name>``
        (``record=False`` for values that differ from run to run, such as wall times)."""
        from myst_nb import glue

        if record:
            self.add(f"glue/{name}", value)
        glue(name, value, display=display)

    def claims(self, rows, timings: tuple[str, ...] = ()) -> None:
        """Record the chapter's claims (:class:`bnn_saliency.verdicts.Claim` rows).

        ``timings`` names claims whose numbers are wall-time measurements (they differ from
        machine to machine): only their text and verdict are checked.
        """
        from .verdicts import Claim

        if not rows or not all(isinstance(r, Claim) for r in rows):
            raise TypeError("claims() takes a non-empty list of claims.Claim rows")
        unknown = set(timings) - {r.claim for r in rows}
        if unknown:
            raise KeyError(f"timings names no claim of this chapter: {sorted(unknown)}")
        self._claims = [_plain(r.to_dict()) for r in rows]
        self._timings = set(timings)

    def payload(self) -> dict:
        if self._claims is None:
            raise RuntimeError(f"{self.chapter}: call claims() before check()")
        return {"chapter": self.chapter, "claims": self._claims, "values": self.values}

    def check(self) -> str:
        """Compare with the committed file (or write it; see the module docstring) and say
        what was compared. The returned line is the same on every machine."""
        fresh = self.payload()
        self._checked = True
        if os.environ.get(UPDATE_ENV) == "1" or not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(fresh, indent=1) + "\n")
            return f"wrote {self.path.name}"
        committed = json.loads(self.path.read_text())
        numbers = ("value", "low", "high")
        masked = [[{k: ("<timing>" if c["claim"] in self._timings and k in numbers else v)
                    for k, v in c.items()} for c in side]
                  for side in (fresh["claims"], committed.get("claims") or [])]
        found = differences(masked[0], masked[1], path="claims")
        stored = committed.get("values", {})
        for name in sorted(set(self.values) | set(stored)):
            atol, rtol = self.tolerance.get(name, (ATOL, RTOL))
            found += differences({name: self.values.get(name, "<not computed>")},
                                 {name: stored.get(name, "<not in the committed results>")},
                                 atol, rtol)
        if found:
            lines = "\n".join(f"  {p}: computed {f!r}, committed {c!r}" for p, f, c in found)
            raise ResultsMismatch(
                f"{len(found)} results of {self.chapter} differ from {self.path.name} beyond "
                f"tolerance:\n{lines}\nIf the change is intended, re-execute the chapter with "
                f"{UPDATE_ENV}=1 (make notebooks does) and commit the new results.")
        numbers, texts = _count(fresh)
        return (f"{self.chapter}: {len(fresh['claims'])} claims, {len(self.values)} recorded "
                f"entries ({numbers} numbers, {texts} texts) agree with the committed results")
