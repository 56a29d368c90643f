"""On-disk memoization of expensive computations (``joblib.Memory``).

``make test`` executes every chapter under nbval and ``make book`` executes them again; the
second execution reads what the first computed. A memoized call is keyed by

- the **code version** of the function: a sha256 of the package's computing code (every
  source file but the study and the modules no computation calls, :data:`NOT_COMPUTING`)
  plus, for a study function, its own chapter's files and ``study/common.py``. A change to
  the library recomputes everything, a change to one chapter recomputes that chapter, and an
  edit to a plotting or training module or another chapter keeps the cache;
- the function's qualified name;
- its arguments, with every Keras model replaced by its **fingerprint** (sha256 of its
  architecture JSON and of all its weights, BatchNorm statistics included), so a retrained,
  re-shipped or randomized model recomputes; arrays are hashed by joblib (content, dtype,
  shape), so another image subset recomputes.

The cache lives in ``<cache_dir>/memo`` (git-ignored). ``BNN_SALIENCY_RECOMPUTE=1`` bypasses it
(a reader's re-execution then recomputes everything); ``clear()`` empties it. A callable
argument is keyed by its module and name; a callable that wraps a model (a compiled forward
pass) carries the model in ``__memo_key__``; closures and lambdas are refused.

Timings stay honest: :class:`stopwatch` counts the original compute time of every cached
call made inside it, so a chapter that reports its cost reports the computation, not the
cache read.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import time
from pathlib import Path

import joblib
import numpy as np

from .data import cache_dir

RECOMPUTE_ENV = "BNN_SALIENCY_RECOMPUTE"
PACKAGE_DIR = Path(__file__).resolve().parent


#: Modules no memoized computation calls: editing them keeps the cache.
NOT_COMPUTING = ("models/training.py", "plotting.py", "notebooks.py", "bench.py",
                 "auditing/figures.py", "auditing/cli.py")


def _study_unit(module: str) -> str | None:
    """``bnn_saliency.study.ch06_beyond.experiments`` -> ``study/ch06_beyond``."""
    parts = module.split(".")
    return f"study/{parts[2]}" if len(parts) > 2 and parts[1] == "study" else None


@functools.lru_cache(maxsize=None)
def code_version(module: str | None = None) -> str:
    """sha256 over the source files (path and content, sorted) a memoized function of
    ``module`` can depend on: the package without the study and :data:`NOT_COMPUTING`, plus
    the function's own study unit and ``study/common.py``. ``module=None``: every file."""
    unit = _study_unit(module) if module else None
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR).as_posix()
        if module is not None and (rel in NOT_COMPUTING or (
                rel.startswith("study/") and not (unit and (
                    rel in ("study/__init__.py", "study/common.py")
                    or rel == f"{unit}.py" or rel.startswith(f"{unit}/"))))):
            continue
        digest.update(rel.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def model_fingerprint(model) -> str:
    """sha256 of a Keras model's architecture and current weights (trainable or not)."""
    digest = hashlib.sha256(model.to_json().encode())
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{weight.name}{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _is_model(obj) -> bool:
    return hasattr(obj, "to_json") and hasattr(obj, "weights") and hasattr(obj, "layers")


class Unkeyable(TypeError):
    """An argument has no content-addressed key; the call then runs uncached."""


def _key(obj, stable: bool = False):
    """A picklable, content-addressed stand-in for ``obj`` (models -> fingerprints).

    ``stable=True`` names functions by their qualified name only, not their module, so the
    key survives moving code between modules (used for the committed records' fingerprints).
    """
    if _is_model(obj):
        return ("keras-model", model_fingerprint(obj))
    if hasattr(obj, "__memo_key__"):
        return ("keyed-callable", getattr(obj, "__qualname__", ""), _key(obj.__memo_key__, stable))
    if isinstance(obj, dict):
        return ("dict", [(str(k), _key(v, stable)) for k, v in obj.items()])  # order matters
    if isinstance(obj, (list, tuple)):
        return type(obj).__name__, [_key(v, stable) for v in obj]
    if isinstance(obj, functools.partial):
        return ("partial", _key(obj.func, stable), _key(obj.args, stable),
                _key(obj.keywords, stable))
    if callable(obj) and hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
        bound = hasattr(obj, "__self__") and not inspect.ismodule(obj.__self__)
        if "<locals>" in qualname or "<lambda>" in qualname or bound:
            raise Unkeyable(f"{qualname!r} is a closure, lambda or bound method")
        if stable:
            return ("callable", qualname)
        return ("callable", getattr(obj, "__module__", ""), qualname)
    if hasattr(obj, "numpy") and hasattr(obj, "dtype") and not isinstance(obj, np.ndarray):
        return np.asarray(obj.numpy())
    return obj


def _run(version, name, key, _call):
    func, args, kwargs = _call
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


_STOPWATCHES: list["stopwatch"] = []


class stopwatch:
    """Wall time with every cache hit counted at its original compute time: either
    ``with memo.stopwatch() as sw: ...`` then ``sw.seconds``, or ``sw = memo.stopwatch().start()``
    ... ``seconds = sw.stop()``."""

    def __init__(self):
        self.seconds, self._credit, self._start = 0.0, 0.0, None

    def start(self) -> "stopwatch":
        self._start, self._credit = time.perf_counter(), 0.0
        _STOPWATCHES.append(self)
        return self

    def stop(self) -> float:
        if self in _STOPWATCHES:
            _STOPWATCHES.remove(self)
        self.seconds = time.perf_counter() - self._start + self._credit
        return self.seconds

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


@functools.lru_cache(maxsize=None)
def _memory(location: str) -> joblib.Memory:
    return joblib.Memory(location, verbose=0)


def location() -> Path:
    return cache_dir() / "memo"


def cached(func):
    """Decorator: memoize ``func`` on disk, keyed as the module docstring describes.

    Use it for deterministic, expensive functions whose arguments are models, arrays and
    plain parameters (seeds included); the result must be picklable. A call with an argument
    that has no content-addressed key (a closure or lambda) runs uncached.
    """
    name = f"{func.__module__}.{func.__qualname__}"

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if os.environ.get(RECOMPUTE_ENV) == "1":
            return func(*args, **kwargs)
        try:
            key = _key((args, kwargs))
        except Unkeyable:
            return func(*args, **kwargs)
        run = _memory(str(location())).cache(_run, ignore=["_call"])
        start = time.perf_counter()
        result, seconds = run(code_version(func.__module__), name, key,
                              _call=(func, args, kwargs))
        read = time.perf_counter() - start
        for watch in _STOPWATCHES:  # a hit took `read`, the computation took `seconds`
            watch._credit += max(seconds - read, 0.0)
        return result

    wrapper.uncached = func
    return wrapper


def clear() -> None:
    """Delete every memoized result."""
    _memory(str(location())).clear(warn=False)
