"""Path methods: Integrated Gradients and its completeness error (Sundararajan et al. 2017)."""

from __future__ import annotations

import numpy as np

from ._core import (
    DEFAULT_BATCH_SIZE,
    baseline_images,
    _batched,
    _blocks,
    _check_batch_size,
    _grad_fn,
    _logits_fn,
    _prepare,
)

IG_RULES = ("midpoint", "trapezoid")


def integrated_gradients(model, images, targets, *, baseline="black", steps: int = 64,
                         rule: str = "midpoint", blur_sigma: float | None = None,
                         batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Integrated gradients: ``(x - x') * integral_0^1 grad f(x' + a (x - x')) da``.

    The integral is a Riemann sum over ``steps`` points: ``rule="midpoint"`` (default)
    evaluates the gradient at ``a_k = (k + 1/2) / steps``, k = 0..steps-1, with equal weights
    (error O(1/steps^2) for smooth f); ``rule="trapezoid"`` uses ``steps + 1`` points
    ``a_k = k / steps`` with half weights at the ends. All path points of a block of images
    go through one compiled gradient, ``batch_size`` rows at a time.

    Args:
        baseline: ``"black"`` (all-zero model input: black for the twins' [0, 1] images; for
            models with their own preprocessing pass an array), ``"blur"`` (the image blurred
            by a Gaussian of ``blur_sigma`` pixels per channel, reflect padding; default
            ``sigma = 5 * min(H, W) / 32``, i.e. 5 px on 32x32 CIFAR-10 images, 35 px at
            224x224 — enough to remove object detail, Sturmfels et al. 2020, Distill), or an
            array broadcastable to ``images`` ((H, W, C) or (N, H, W, C)).
        steps: number of Riemann intervals (default 64; completeness improves with more).
        rule: ``"midpoint"`` or ``"trapezoid"``.

    Returns:
        float32 attributions shaped like ``images``; :func:`convergence_delta` measures
        completeness (``sum(attr) == f(x) - f(x')``).

    References:
        Sundararajan, Taly & Yan 2017, arXiv:1703.01365.
    """
    if rule not in IG_RULES:
        raise ValueError(f"rule must be one of {IG_RULES}, got {rule!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    x, t = _prepare(model, images, targets)
    batch_size = _check_batch_size(batch_size)
    base = baseline_images(x, baseline, blur_sigma)
    if rule == "midpoint":
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    else:
        alphas = np.arange(steps + 1) / steps
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] *= 0.5
    s = len(alphas)
    a = alphas.astype(x.dtype).reshape((1, s) + (1,) * (x.ndim - 1))
    fn = _grad_fn(model)
    out = np.empty(x.shape, dtype=np.float32)
    for blk in _blocks(len(x), s, x[0].size):
        xb, bb = x[blk], base[blk]
        path = bb[:, None] + a * (xb - bb)[:, None]
        grads, _ = _batched(fn, batch_size, path.reshape((-1,) + x.shape[1:]), np.repeat(t[blk], s))
        grads = grads.reshape((len(xb), s) + x.shape[1:])
        avg = np.einsum("s,bs...->b...", weights, grads.astype(np.float64))
        out[blk] = (xb - bb) * avg
    return out


def convergence_delta(model, images, targets, attributions, baseline="black", *,
                      blur_sigma: float | None = None,
                      batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Completeness gap ``sum(attr) - (f(x)[t] - f(x')[t])`` per image, in float64.

    Zero for exact integrated gradients and for DeepLIFT on nets without max pooling.
    ``baseline`` and ``blur_sigma`` must be those used to compute ``attributions``.

    Returns:
        float64 array (N,).
    """
    x, t = _prepare(model, images, targets)
    attributions = np.asarray(attributions)
    if attributions.shape != x.shape:
        raise ValueError(f"attributions have shape {attributions.shape}, expected {x.shape}")
    base = baseline_images(x, baseline, blur_sigma)
    fn = _logits_fn(model)
    batch_size = _check_batch_size(batch_size)
    fx = _batched(fn, batch_size, x)[np.arange(len(x)), t].astype(np.float64)
    fb = _batched(fn, batch_size, base)[np.arange(len(x)), t].astype(np.float64)
    total = attributions.astype(np.float64).reshape(len(x), -1).sum(axis=1)
    return total - (fx - fb)


def relative_completeness_error(model, images, targets, attributions, baseline="black",
                                **kw) -> np.ndarray:
    """``|sum(attr) - (f(x)[t] - f(x')[t])| / |f(x)[t] - f(x')[t]|`` per image.

    The completeness gap of :func:`bnn_saliency.methods.convergence_delta`, relative to the
    logit difference it should explain. Images whose logit difference is below ``1e-6`` in
    absolute value get NaN (nothing to explain).

    Returns:
        float64 (N,).
    """
    x = np.asarray(images)
    delta = convergence_delta(model, x, targets, attributions, baseline, **kw)
    attr_sum = np.asarray(attributions, dtype=np.float64).reshape(len(x), -1).sum(axis=1)
    fdiff = attr_sum - delta  # = f(x)[t] - f(x')[t]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(delta) / np.abs(fdiff)
    return np.where(np.abs(fdiff) < 1e-6, np.nan, rel)
