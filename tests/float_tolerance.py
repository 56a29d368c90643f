"""Tolerances for tests that compare two float32 computations of the same quantity.

Float32 results differ in their last bits between machines and runs (kernels, SIMD width,
thread count, batch size, summation order), so a comparison of two float32 paths, or of a
float32 TF/Keras computation with a closed form evaluated on float32 data, needs a
tolerance derived from float32 rounding, not a hand-picked ``rtol=1e-6``. Comparisons of
float64 computations with float64 oracles keep their tight tolerances; exact results
(counts, masks, copies, the same computation run twice) stay exact.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 2**-23 ~ 1.19e-7


def float32_tolerance(desired, depth: int = 1, safety: float = 16,
                      scale: float | None = None) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing a float32 result with ``desired``.

    Derivation: a float32 sum of products (one layer, one reduction) is off by about EPS32
    times the magnitude of its terms, in a way that changes with the order of the sum; errors
    of ``depth`` chained layers add up, so ``rtol = safety * depth * EPS32``, where ``safety``
    (16 = sqrt(256)) covers the random-walk growth over a few hundred terms. As the error scales
    with the terms and not with the result, an entry that cancels to near zero keeps an
    absolute error of that size: ``atol = rtol * scale``, ``scale = max |desired|`` over the
    finite entries unless given (pass the terms' magnitude when results are much smaller).

    Args:
        desired: the reference values (array-like; not read when ``scale`` is given).
        depth: number of float32 layers/reductions chained in the computation (>= 1).
        safety: multiple of ``depth * EPS32`` allowed (default 16).
        scale: magnitude of the terms; default ``max |desired|``.
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    rtol = float(safety) * int(depth) * EPS32
    if scale is None:
        d = np.abs(np.asarray(desired, dtype=np.float64))
        d = d[np.isfinite(d)]
        scale = float(d.max()) if d.size else 0.0
    return rtol, rtol * float(scale)


def assert_float32_close(actual, desired, *, depth: int, safety: float = 16,
                         scale: float | None = None, equal_nan: bool = True, err_msg: str = ""):
    """``np.testing.assert_allclose`` with the tolerance of :func:`float32_tolerance`."""
    rtol, atol = float32_tolerance(desired, depth=depth, safety=safety, scale=scale)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, equal_nan=equal_nan,
                               err_msg=f"float32 comparison, depth={depth}. {err_msg}".strip())
