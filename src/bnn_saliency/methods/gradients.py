"""Gradient, Gradient x Input and SmoothGrad (plus tf-keras-vis's SmoothGrad as a reference)."""

from __future__ import annotations

from typing import Callable

import numpy as np


from ._core import DEFAULT_BATCH_SIZE, _batched, _blocks, _check_batch_size, _grad_fn, _prepare


def gradient(model, images, targets, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Vanilla gradient: signed ``d logit[target] / d input``.

    Args:
        model: tf.keras model outputting logits.
        images: float array (N, H, W, C) in the model's input space.
        targets: int class indices (N,) or a scalar.
        batch_size: rows per compiled call (default 64).

    Returns:
        float32 array shaped like ``images``. For BNNs the gradient passes through the
        straight-through estimators of the sign functions.

    References:
        Simonyan, Vedaldi & Zisserman 2013, arXiv:1312.6034.
    """
    x, t = _prepare(model, images, targets)
    grads, _ = _batched(_grad_fn(model), _check_batch_size(batch_size), x, t)
    return grads.astype(np.float32)


def gradient_x_input(model, images, targets, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Gradient times input, ``x * d logit[target] / d x`` (signed).

    For ReLU networks without additive biases (e.g. randomly initialized twins whose BN
    has beta = 0 and moving mean 0) the network is positively homogeneous, and gradient x
    input equals integrated gradients and DeepLIFT-rescale with a zero baseline (Ancona et
    al. 2018, arXiv:1711.06104).

    References:
        Shrikumar et al. 2016, arXiv:1605.01713.
    """
    x, t = _prepare(model, images, targets)
    grads, _ = _batched(_grad_fn(model), _check_batch_size(batch_size), x, t)
    return (grads * x).astype(np.float32)


MAGNITUDES = ("none", "abs", "square")


def smoothgrad(model, images, targets, *, method: str | Callable = "gradient", noise: float = 0.2,
               n_samples: int = 50, seed: int = 0, magnitude: str = "none",
               value_range: tuple[float, float] | None = None,
               image_ids=None, batch_size: int = DEFAULT_BATCH_SIZE, **method_params
               ) -> np.ndarray:
    """SmoothGrad: the average of a saliency method over Gaussian-noised copies of each image.

    A wrapper around any method of this module (like Captum's ``NoiseTunnel``). Image ``i``
    gets ``n_samples`` copies ``x_i + eps``, ``eps ~ N(0, sigma_i^2)`` i.i.d. per element, with
    ``sigma_i = noise * (max(x_i) - min(x_i))`` over all pixels and channels of that image
    (Smilkov et al.'s "noise level", as in tf-keras-vis), or ``noise * (hi - lo)`` if
    ``value_range=(lo, hi)`` is given. Noise comes from ``np.random.default_rng(seed)``, drawn
    image by image in order (:func:`draw_noisy_copies`), so the noisy inputs do not depend on
    ``batch_size`` (the maps only up to float rounding). With ``image_ids``, image ``i`` draws
    from its own ``np.random.default_rng([seed, image_ids[i]])`` instead, so its noise does not
    depend on which images are explained with it (a subset reproduces the full run). The copies of a block
    of images are stacked along the batch axis and sent through the wrapped method in one
    call (for ``gradient``: one compiled ``tf.function``, ``batch_size`` rows at a time),
    not a Python loop per sample.

    Args:
        method: name in :data:`METHODS` or a callable with the uniform call shape (default
            ``"gradient"``).
        noise: noise level relative to the image's value range (default 0.2; 0 gives
            ``n_samples`` identical copies).
        n_samples: noisy copies per image (default 50).
        seed: seed of the noise generator (default 0).
        magnitude: ``"none"`` averages the signed maps (default, the paper's SmoothGrad),
            ``"abs"`` averages ``|map|`` (what tf-keras-vis computes), ``"square"`` averages
            ``map**2`` (SmoothGrad-Squared, Hooker et al. 2019, arXiv:1806.10758).
        value_range: fixed (lo, hi) used for sigma instead of each image's own range.
        image_ids: one non-negative integer per image keying its noise (default None: one
            generator for all images).
        batch_size: passed to the wrapped method.
        **method_params: passed to the wrapped method (e.g. ``layer=`` for CAM methods,
            ``steps=`` for integrated gradients).

    Returns:
        float32 array of the wrapped method's output shape.

    Note:
        tf-keras-vis (``Saliency(...)(..., smooth_samples=n)``) by default takes ``|grad|``
        per sample, then the max over channels (``keepdims=False``), then min-max
        normalizes each map. ``smoothgrad(..., magnitude="abs")`` followed by a channel max
        (``postprocess.reduce_channels(m, "max")``) and ``postprocess.normalize`` reproduces it
        (up to Monte-Carlo noise and tf-keras-vis's epsilon in the normalization).

    References:
        Smilkov et al. 2017, arXiv:1706.03825.
    """
    from . import get_method  # the registry imports this module

    fn = get_method(method) if isinstance(method, str) else method
    if not callable(fn):
        raise TypeError(f"method must be a method name or a callable, got {type(method).__name__}")
    if fn is smoothgrad:
        raise ValueError("smoothgrad cannot wrap itself")
    if magnitude not in MAGNITUDES:
        raise ValueError(f"magnitude must be one of {MAGNITUDES}, got {magnitude!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    x, t = _prepare(model, images, targets)
    batch_size = _check_batch_size(batch_size)
    if value_range is not None:
        lo, hi = value_range
        if not hi >= lo:
            raise ValueError(f"value_range must be (lo, hi) with hi >= lo, got {value_range}")
    if image_ids is None:
        rng = np.random.default_rng(seed)
    else:
        ids = np.asarray(image_ids)
        if ids.shape != (len(x),) or not np.issubdtype(ids.dtype, np.integer) or (ids < 0).any():
            raise ValueError(f"image_ids must be {len(x)} non-negative integers (one per image), "
                             f"got {np.asarray(image_ids)!r:.80}")
        per_image = [np.random.default_rng([int(seed), int(i)]) for i in ids]
    n = int(n_samples)
    baseline = method_params.get("baseline")
    out = None
    for blk in _blocks(len(x), n, x[0].size):
        xb = x[blk]
        if image_ids is None:
            noisy = draw_noisy_copies(xb, noise, n, rng, value_range)
        else:
            noisy = np.concatenate([draw_noisy_copies(xb[k:k + 1], noise, n, g, value_range)
                                    for k, g in enumerate(per_image[blk])])
        noisy = noisy.reshape((-1,) + x.shape[1:])
        params = dict(method_params)
        if isinstance(baseline, np.ndarray) and baseline.ndim == 4:  # per-image baselines
            params["baseline"] = np.repeat(np.broadcast_to(baseline, x.shape)[blk], n, axis=0)
        if fn is gradient and not method_params:  # validated inputs: the compiled gradient
            maps, _ = _batched(_grad_fn(model), batch_size, noisy, np.repeat(t[blk], n))
            maps = maps.astype(np.float32, copy=False)  # as gradient() returns it
        else:
            maps = fn(model, noisy, np.repeat(t[blk], n), batch_size=batch_size, **params)
        maps = np.asarray(maps, dtype=np.float64).reshape((len(xb), n) + maps.shape[1:])
        if magnitude == "abs":
            maps = np.abs(maps)
        elif magnitude == "square":
            maps = maps ** 2
        mean = maps.mean(axis=1)
        if out is None:
            out = np.empty((len(x),) + mean.shape[1:], dtype=np.float32)
        out[blk] = mean
    return out


def draw_noisy_copies(images: np.ndarray, noise: float, n_samples: int,
                      rng: np.random.Generator, value_range: tuple[float, float] | None = None
                      ) -> np.ndarray:
    """SmoothGrad's noisy copies of ``images``: ``(N, n_samples, H, W, C)``, images' dtype.

    The one definition of the noise draws, shared by :func:`smoothgrad` and
    :func:`bnn_saliency.evaluation.perturbation.noisy_copies`. Copy ``d`` of image ``i`` is
    ``x_i + float32(noise * spread_i) * eps_id`` with ``spread_i = max(x_i) - min(x_i)`` (or
    ``hi - lo`` for ``value_range=(lo, hi)``) and ``eps`` float32 standard normal, drawn from
    ``rng`` image by image, copy by copy, element by element (one call for the whole batch
    consumes the generator exactly like a loop over images and copies). The noise term is
    float32 and is added in the images' dtype. Calling this on consecutive blocks of images
    with the same ``rng`` gives the same copies as one call on all of them.

    Args:
        images: float array (N, H, W, C), validated by the caller.
        noise: noise level relative to the value range (>= 0).
        n_samples: copies per image (>= 1).
        rng: the generator, advanced by ``N * n_samples * H * W * C`` draws.
        value_range: fixed (lo, hi) for the spread instead of each image's own range.
    """
    x = np.asarray(images)
    if value_range is not None:
        lo, hi = value_range
        spread = np.full(len(x), float(hi - lo))
    else:
        flat = x.reshape(len(x), -1)
        spread = flat.max(axis=1) - flat.min(axis=1)  # in the images' dtype, as max - min
    scale = np.array([np.float32(noise * float(s)) for s in spread], dtype=np.float32)
    eps = rng.standard_normal((len(x), int(n_samples)) + x.shape[1:], dtype=np.float32)
    eps *= scale.reshape((-1,) + (1,) * (eps.ndim - 1))
    return x[:, None] + eps


def smoothgrad_tfkerasvis(model, images, targets, noise: float = 0.2, n_samples: int = 50,
                          seed: int = 0, *, signed: bool = False,
                          batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """SmoothGrad computed by tf-keras-vis 0.8.7 (reference implementation, benchmarks).

    Calls ``tf_keras_vis.saliency.Saliency(model)(CategoricalScore(targets), images,
    smooth_samples=n_samples, smooth_noise=noise, keepdims=True, normalize_map=False)`` with
    the global numpy RNG seeded by ``np.random.seed(seed)`` (its previous state is restored
    afterwards). tf-keras-vis draws the noise with ``np.random.normal`` and sigma
    ``noise * (max - min)`` of each image, like :func:`smoothgrad`, but loops in Python over
    the samples (one eager gradient of the whole batch per sample).

    tf-keras-vis defaults, and what we override: ``gradient_modifier=abs`` (kept unless
    ``signed=True``, which passes ``None``), ``keepdims=False`` i.e. max over channels
    (overridden: ``keepdims=True`` returns (N, H, W, C)), ``normalize_map=True`` i.e. per-map
    min-max with a 1e-7 epsilon (overridden: raw averages). With the defaults kept this
    function equals ``smoothgrad(..., magnitude="abs")`` in expectation (``magnitude="none"``
    for ``signed=True``); apply ``postprocess.tfkerasvis_style`` to get tf-keras-vis's
    displayed map. The environment variable ``TF_KERAS_VIS_MAX_STEPS`` caps ``n_samples``
    inside tf-keras-vis.

    Returns:
        float32 array shaped like ``images``.
    """
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    x, t = _prepare(model, images, targets)
    batch_size = _check_batch_size(batch_size)
    viz = Saliency(model, model_modifier=None, clone=False)
    kwargs = {"gradient_modifier": None} if signed else {}
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        parts = []
        for start in range(0, len(x), batch_size):
            xb, tb = x[start:start + batch_size], t[start:start + batch_size]
            parts.append(np.asarray(viz(CategoricalScore(tb.tolist()), xb, smooth_samples=int(n_samples),
                                        smooth_noise=noise, keepdims=True, normalize_map=False,
                                        **kwargs)))
    finally:
        np.random.set_state(state)
    return np.concatenate(parts).astype(np.float32)
