"""Chapter 5 on random and untrained networks: the experiments, their tables and summaries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import evaluation, methods, models
from ...memo import cached
from ...stats import bootstrap_ci, bootstrap_ci_2level
from ...theory.closed_forms import (
    WEIGHT_LAWS,
    _check_image,
    closed_form_gbp,
    expected_gbp,
    extract_patches,
    gaussian_halfspace_mean,
    rademacher_halfspace_mean_clt,
    rademacher_halfspace_mean_exact,
)
from ...theory.random_nets import METHODS, VARIANTS, RandomConvNet, conv_sweep, fc_sweep_in_law, relative_error

#: Random-network variants named like the CIFAR twins (the dense classifier stays Gaussian).

def rms_slope_ci(blocks, n_boot: int = 2000, ci: float = 0.95, seed: int = 0
                 ) -> tuple[float, float, float]:
    """Log-log slope of the root-mean-square error against ``n``, with a bootstrap CI.

    The theory predicts ``E[err^2] = C / n`` exactly (i.i.d. filters), i.e. slope -1/2 for
    ``sqrt(mean err^2)``. The squared errors are pooled over units first (the mean of
    per-network slopes of ``log err`` is biased towards 0 at small ``n``, since
    ``E log err < log sqrt(E err^2)`` when ``err`` varies); images carry different constants
    ``C``, which a common slope absorbs.

    Args:
        blocks: list of ``(sizes, errors)``; ``errors`` is (S_b, I, K_b): S_b network seeds,
            the same I images in every block, K_b = len(sizes). Blocks hold independent
            networks (e.g. many single-filter nets for n = 1 and a nested sweep for large n);
            sizes must not repeat across blocks.
        n_boot, ci, seed: bootstrap replicates, coverage and generator seed. Each replicate
            resamples the seeds of every block independently and the images once for all
            blocks (crossed design).

    Returns:
        (slope, low, high).
    """
    sizes, tables = [], []
    for n, err in blocks:
        e2 = np.asarray(err, dtype=np.float64) ** 2
        if e2.ndim != 3 or e2.shape[2] != len(n):
            raise ValueError(f"errors must be (seeds, images, len(sizes)), got {e2.shape}")
        sizes.extend(int(v) for v in n)
        tables.append(e2)
    if len(set(sizes)) != len(sizes) or len({t.shape[1] for t in tables}) != 1:
        raise ValueError("sizes must not repeat across blocks, and every block needs the same images")
    logn = np.log(np.asarray(sizes, dtype=np.float64))

    def slope(picks_s, pick_i):
        ms = [t[ps][:, pick_i].mean(axis=(0, 1)) for t, ps in zip(tables, picks_s)]
        return np.polyfit(logn, 0.5 * np.log(np.concatenate(ms)), 1)[0]

    n_img = tables[0].shape[1]
    point = slope([np.arange(len(t)) for t in tables], np.arange(n_img))
    rng = np.random.default_rng(seed)
    boots = [slope([rng.integers(0, len(t), len(t)) for t in tables], rng.integers(0, n_img, n_img))
             for _ in range(n_boot)]
    alpha = (1 - ci) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return float(point), float(low), float(high)


def mean_pairwise_correlation(maps) -> float:
    """Mean Pearson correlation over all pairs of maps (L, ...) of one image (class invariance).

    NaN pairs (a constant map) are skipped; NaN if there is no defined pair.
    """
    m = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    if len(m) < 2:
        raise ValueError("need at least two maps (e.g. of two logits) to correlate")
    m = m - m.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(m, axis=1)
    vals = [m[i] @ m[j] / (norm[i] * norm[j]) for i in range(len(m)) for j in range(i + 1, len(m))
            if norm[i] > 0 and norm[j] > 0]
    return float(np.mean(vals)) if vals else float("nan")


def display_rgb(maps, spread: float = 3.0) -> np.ndarray:
    """Signed RGB maps as displayable images: ``0.5 + (m - mean) / (2 * spread * std)``, clipped.

    Per map (over pixels and channels); for figures only (a linear, sign-preserving rendering).
    """
    m = np.asarray(maps, dtype=np.float64)
    axes = tuple(range(m.ndim - 3, m.ndim))
    mu = m.mean(axis=axes, keepdims=True)
    sd = m.std(axis=axes, keepdims=True)
    return np.clip(0.5 + (m - mu) / (2 * spread * np.where(sd > 0, sd, 1.0)), 0.0, 1.0)


def demo_images(n: int, size: int = 64, seed: int = 0, first: str = "tabby"
                ) -> tuple[np.ndarray, list[str], str]:
    """``n`` natural images as float64 in [0, 1], (n, size, size, 3), with names and source.

    From the offline ImageNet sample mirror when ``BNN_SALIENCY_DATA`` is set (``first``, then
    seeded random other classes), else from package-shipped photos (chelsea, a tabby cat, first).
    """
    from ... import data

    if data.data_dir(required=False) is not None:
        samples = data.imagenet_samples()
        rest = sorted((s for s in samples if s.name != first), key=lambda s: s.index)
        pick = np.random.default_rng(seed).choice(len(rest), size=n - 1, replace=False)
        chosen = [first] + [rest[i].name for i in sorted(pick)]
        imgs = [data.load_imagenet_sample(name, size=size)[0] / 255.0 for name in chosen]
        return np.stack(imgs).astype(np.float64), chosen, "ImageNet samples (offline mirror)"
    from PIL import Image

    names = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"][:n]
    if len(names) < n:
        raise ValueError(f"without the data mirror only 6 package photos exist, asked for {n}")
    imgs = []
    for name in names:
        im = Image.fromarray(data.package_photo(name))
        s = min(im.size)
        left, top = (im.width - s) // 2, (im.height - s) // 2
        im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.BILINEAR)
        imgs.append(np.asarray(im, dtype=np.float64) / 255.0)
    return np.stack(imgs), names, "package photos (no data mirror)"


def seeds_images_ci(table, value: str, seed: int = 0):
    """Mean of ``table[value]`` over network seeds x images, with a crossed two-level bootstrap.

    Args:
        table: long DataFrame with columns ``seed``, ``image`` and ``value``; each (seed, image)
            pair at most once (select one setting first).
        value: column to summarize.
        seed: bootstrap seed.

    Returns:
        :class:`bnn_saliency.stats.CI` from :func:`bnn_saliency.stats.bootstrap_ci_2level`.
    """

    missing = [c for c in ("seed", "image", value) if c not in table.columns]
    if missing:
        raise KeyError(f"table lacks columns {missing}; it has {list(table.columns)}")
    if table.duplicated(["seed", "image"]).any():
        raise ValueError("repeated (seed, image) pairs: select one setting (e.g. one N) first")
    wide = table.pivot(index="seed", columns="image", values=value).to_numpy()
    return bootstrap_ci_2level(wide, seed=seed)


def group_cis(table, columns, by: str, seed: int = 0):
    """Per group of ``by`` (in order of appearance), the bootstrap CI of the mean of each column.

    Returns a DataFrame indexed by group, one :class:`~bnn_saliency.stats.CI` per cell.
    """
    import pandas as pd


    return pd.DataFrame({col: {g: bootstrap_ci(t[col].to_numpy(dtype=float), seed=seed)
                               for g, t in table.groupby(by, sort=False)}
                         for col in columns})


def random_logit_targets(logits, n_logits: int, seed: int) -> np.ndarray:
    """Per image: the largest logit, then ``n_logits - 1`` distinct other logits drawn at random.

    Args:
        logits: (N, K) array.
        n_logits: targets per image (1..K).
        seed: seed of ``numpy.random.default_rng``, one generator for all images in order.

    Returns:
        (N, n_logits) int array; column 0 is the arg-max.
    """
    z = np.asarray(logits)
    if z.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {z.shape}")
    if not 1 <= n_logits <= z.shape[1]:
        raise ValueError(f"n_logits must be in 1..{z.shape[1]}, got {n_logits}")
    rng = np.random.default_rng(seed)
    everything = np.arange(z.shape[1])
    return np.stack([np.r_[row.argmax(), rng.choice(np.delete(everything, row.argmax()),
                                                    n_logits - 1, replace=False)]
                     for row in z])


@cached
def untrained_logit_maps(build, inputs, seeds=(0, 1), n_logits: int = 4, batch_size: int = 4
                         ) -> dict[int, dict[str, np.ndarray]]:
    """GBP and gradient maps of untrained Keras networks for several logits of each input.

    The model is built once with ``build(seeds[0])``; for every further seed its weights are
    replaced by those of ``build(seed)`` (same architecture, no re-tracing of the saliency
    functions). Targets are :func:`random_logit_targets` with the network seed.

    Args:
        build: ``build(seed) -> keras.Model`` returning logits, or the name of a registered
            model (:func:`bnn_saliency.models.build`), which also makes the call memoizable.
        inputs: (N, H, W, C) model inputs (already preprocessed).
        seeds: network seeds.
        n_logits: logits explained per input (the largest, then random ones).
        batch_size: passed to the saliency methods.

    Returns:
        ``{seed: {"targets": (N, L), "gbp": (N, L, H, W, C), "gradient": (N, L, H, W, C)}}``.
    """
    import gc


    x = np.asarray(inputs)
    if x.ndim != 4:
        raise ValueError(f"inputs must be (N, H, W, C), got shape {x.shape}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("give at least one network seed")
    if isinstance(build, str):

        name = build
        build = lambda seed: models.build(name, seed=seed)  # noqa: E731
    out = {}
    model = build(seeds[0])
    for seed in seeds:
        if seed != seeds[0]:
            model.set_weights(build(seed).get_weights())
            gc.collect()
        logits = np.asarray(model(x, training=False))
        targets = random_logit_targets(logits, n_logits, seed)
        xs, ts = np.repeat(x, n_logits, axis=0), targets.ravel()
        shape = (len(x), n_logits) + x.shape[1:]
        out[seed] = {"targets": targets,
                     "gbp": methods.guided_backprop(model, xs, ts, batch_size=batch_size
                                                     ).reshape(shape),
                     "gradient": methods.gradient(model, xs, ts, batch_size=batch_size
                                                   ).reshape(shape)}
    del model
    gc.collect()
    return out


def invariance_table(results: dict, inputs):
    """Class invariance and image resemblance of :func:`untrained_logit_maps` results.

    Per (seed, image): ``invariance <m>``, the :func:`mean_pairwise_correlation` of method m's
    maps over the logits, and ``corr(image) <m>``, the Pearson correlation of the first
    (largest) logit's map with the input, for m in gbp, gradient.
    """
    import pandas as pd


    x = np.asarray(inputs)
    rows = []
    for seed, res in results.items():
        for i in range(len(x)):
            rows.append({"seed": seed, "image": i,
                         **{f"invariance {m}": mean_pairwise_correlation(res[m][i]) for m in METHODS},
                         **{f"corr(image) {m}": evaluation.pearson(res[m][i, :1], x[i:i + 1])[0]
                            for m in METHODS}})
    return pd.DataFrame(rows)


def unit_expectations(images, kernel: int = 7) -> dict[str, np.ndarray]:
    """:func:`closed_form_gbp` of every image for each weight law: law -> (N, H, W, C)."""
    return {law: np.stack([closed_form_gbp(x, kernel, law) for x in images])
            for law in WEIGHT_LAWS}


@dataclass
class ConvExperiment:
    """Result of :func:`conv_experiment`.

    Attributes:
        table: one row per (variant, seed, image, N): correlations ``gbp~eq5``, ``gbp~image``,
            ``grad~eq5``, ``grad~image`` and ``rel. error`` (GBP against its expectation,
            NaN for sign activations).
        invariance: one row per (variant, seed, image): ``gbp`` and ``gradient``, the
            correlation of the maps of logits 0 and 1 at ``invariance_n`` filters.
        maps: ``(variant, image) -> conv_sweep`` output of network seed ``seeds[0]``.
        sizes: variant -> the filter counts swept.
    """

    table: object
    invariance: object
    maps: dict
    sizes: dict


@cached
def conv_experiment(images, seeds, sizes, *, variants=tuple(VARIANTS), sign_max: int = 256,
                    invariance_n: int = 256, unit=None, patches=None, dtype: str = "float32"
                    ) -> ConvExperiment:
    """Sweep the number of filters of random conv nets over seeds, images and variants.

    For every variant, network seed and image one :func:`conv_sweep` of logit 0 gives the
    prefix networks with ``sizes`` filters (sign-activation variants stop at ``sign_max``: the
    image term is zero for them, so there is no N-trend to measure); the GBP error is measured
    against :func:`expected_gbp` rescaled to each N. A second network of ``invariance_n``
    filters and the same seed explains logit 1, for the class invariance.

    Args:
        images: (I, H, W, C) images.
        seeds: network seeds.
        sizes: increasing filter counts; ``invariance_n`` must be among the swept sizes.
        variants: names in :data:`VARIANTS`.
        sign_max: largest N for sign-activation variants.
        invariance_n: N of the two-logit class-invariance comparison.
        unit: optional :func:`unit_expectations` of the images (computed if None).
        patches: optional list of :func:`extract_patches` per image.
        dtype: the networks' compute dtype.
    """
    import pandas as pd


    images = np.asarray(images)
    unit = unit_expectations(images) if unit is None else unit
    patches = [extract_patches(x) for x in images] if patches is None else patches
    refs = unit["gaussian"]
    rows, inv_rows, keep, swept = [], [], {}, {}
    for variant in variants:
        relu = VARIANTS[variant]["activation"] == "relu"
        var_sizes = [int(n) for n in sizes if relu or n <= sign_max]
        if invariance_n not in var_sizes:
            raise ValueError(f"invariance_n={invariance_n} is not among the sizes {var_sizes} "
                             f"swept for {variant!r}")
        k_inv = var_sizes.index(invariance_n)
        swept[variant] = var_sizes
        for seed in seeds:
            for i, x in enumerate(images):
                net = RandomConvNet.variant(variant, var_sizes[-1], seed=seed, dtype=dtype)
                sw = conv_sweep(net, x, 0, var_sizes, patches=patches[i])
                expected = expected_gbp(net, x, unit[net.weights][i]) if relu else None
                for n, gbp, grad in zip(var_sizes, sw["gbp"], sw["gradient"]):
                    err = (relative_error(gbp[None] * var_sizes[-1] / n, expected)[0]
                           if relu else np.nan)
                    rows.append({"variant": variant, "seed": seed, "image": i, "N": n,
                                 "gbp~eq5": evaluation.pearson(gbp[None], refs[i:i + 1])[0],
                                 "gbp~image": evaluation.pearson(gbp[None], x[None])[0],
                                 "grad~eq5": evaluation.pearson(grad[None], refs[i:i + 1])[0],
                                 "grad~image": evaluation.pearson(grad[None], x[None])[0],
                                 "rel. error": err})
                if seed == seeds[0]:
                    keep[variant, i] = sw
                other = conv_sweep(RandomConvNet.variant(variant, invariance_n, seed=seed,
                                                         dtype=dtype),
                                   x, 1, patches=patches[i])
                inv_rows.append({"variant": variant, "seed": seed, "image": i,
                                 "gbp": mean_pairwise_correlation([sw["gbp"][k_inv],
                                                                   other["gbp"][0]]),
                                 "gradient": mean_pairwise_correlation(
                                     [sw["gradient"][k_inv], other["gradient"][0]])})
    return ConvExperiment(pd.DataFrame(rows), pd.DataFrame(inv_rows), keep, swept)


@cached
def independent_errors(variant: str, images, seeds_per_size: dict[int, int], *, unit=None,
                       patches=None, seed_base: int = 1000, dtype: str = "float32"
                       ) -> dict[int, np.ndarray]:
    """Relative GBP errors of independent (not nested) networks with few filters.

    With nested networks the N = 1 point rests on one filter per seed; here every network of
    size n is drawn afresh, with seeds ``seed_base * n + s`` for ``s < seeds_per_size[n]``.

    Returns:
        ``{n: (seeds_per_size[n], I, 1) errors}``, the layout of :func:`rms_slope_ci` blocks.
    """
    images = np.asarray(images)
    if VARIANTS[variant]["activation"] != "relu":
        raise ValueError(f"variant {variant!r} has sign activations: its expected GBP is 0, "
                         "so a relative error is undefined; use a ReLU variant (fp, binw)")
    unit = unit_expectations(images) if unit is None else unit
    patches = [extract_patches(x) for x in images] if patches is None else patches
    out = {}
    for n, n_seeds in seeds_per_size.items():
        errs = np.empty((n_seeds, len(images), 1))
        for s in range(n_seeds):
            net = RandomConvNet.variant(variant, n, seed=seed_base * n + s, dtype=dtype)
            for i, x in enumerate(images):
                gbp = conv_sweep(net, x, 0, patches=patches[i])["gbp"]
                errs[s, i, 0] = relative_error(gbp, expected_gbp(net, x, unit[net.weights][i]))[0]
        out[n] = errs
    return out


def error_blocks(table, variant: str, independent: dict[int, np.ndarray]) -> list:
    """:func:`rms_slope_ci` blocks: the independent small networks, then the nested sweep.

    Args:
        table: :attr:`ConvExperiment.table`.
        variant: which variant's errors.
        independent: :func:`independent_errors` output; its sizes are dropped from the nested
            sweep (sizes must not repeat across blocks).
    """
    t = table[table["variant"] == variant]
    if t.empty:
        raise KeyError(f"no rows for variant {variant!r} in the table")
    wide = t.pivot_table(index=["seed", "image"], columns="N", values="rel. error")
    nested = wide.to_numpy().reshape(t["seed"].nunique(), t["image"].nunique(), wide.shape[1])
    keep = [k for k, n in enumerate(wide.columns) if n not in independent]
    return ([([n], errs) for n, errs in independent.items()]
            + [([int(wide.columns[k]) for k in keep], nested[..., keep])])


def rms_by_size(blocks) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, sqrt(mean err^2))`` over seeds and images, per size, in block order."""
    sizes = np.concatenate([np.asarray(n, dtype=int) for n, _ in blocks])
    rms = np.concatenate([np.sqrt((np.asarray(e, dtype=np.float64) ** 2).mean(axis=(0, 1)))
                          for _, e in blocks])
    return sizes, rms


def fc_law_table(images, sizes, seeds):
    """Correlation of the FC net's GBP and gradient with the image, from the exact law.

    One row per (seed, image, N_h) with ``gbp~image`` and ``grad~image``, sampled with
    :func:`fc_sweep_in_law`.
    """
    import pandas as pd


    rows = []
    for seed in seeds:
        for i, x in enumerate(images):
            law = fc_sweep_in_law(x, sizes, seed=seed)
            for n, gbp, grad in zip(law["sizes"], law["gbp"], law["gradient"]):
                rows.append({"seed": seed, "image": i, "N_h": int(n),
                             "gbp~image": evaluation.pearson(gbp[None], x[None])[0],
                             "grad~image": evaluation.pearson(grad[None], x[None])[0]})
    return pd.DataFrame(rows)


def fc_width_for_correlation(image, r: float) -> float:
    """Hidden units N_h at which :func:`fc_predicted_correlation` reaches ``r`` (0 < r < 1).

    Inverts ``r = 1 / sqrt(1 + pi^2 d / (N_h rho^2))``:
    ``N_h = pi^2 d / (rho^2 (1/r^2 - 1))``, with ``rho^2 = var(x) / mean(x^2)``.
    """
    if not 0 < r < 1:
        raise ValueError(f"r must be in (0, 1), got {r}")
    x = _check_image(image)
    rho2 = np.var(x) / np.mean(x ** 2)
    if not rho2 > 0:
        raise ValueError("a constant image has no image term to correlate with")
    return float(np.pi ** 2 * x.size / (rho2 * (1 / r ** 2 - 1)))


@cached
def rademacher_patch_deviations(images, per_image: int = 4, seed: int = 0, kernel: int = 7):
    """How far Rademacher's exact ``E[eps 1(eps.y > 0)]`` is from the Gaussian form on patches.

    Per image, ``per_image`` random 8-bit patches (``round(255 x)``, one generator for all
    images in order). Columns: ``exact vs Gaussian`` and ``exact vs CLT``, relative l2 distances
    of :func:`rademacher_halfspace_mean_exact` from :func:`gaussian_halfspace_mean` and from
    :func:`rademacher_halfspace_mean_clt`, both divided by the Gaussian vector's norm.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for i, x in enumerate(images):
        patches = np.round(extract_patches(np.asarray(x) * 255.0, kernel)).astype(np.int64)
        if per_image > len(patches):
            raise ValueError(f"image {i} has {len(patches)} patches, asked for {per_image}")
        for j in rng.choice(len(patches), size=per_image, replace=False):
            y = patches[j]
            exact = rademacher_halfspace_mean_exact(y)
            gauss, clt = gaussian_halfspace_mean(y), rademacher_halfspace_mean_clt(y)
            rows.append({"image": i,
                         "exact vs Gaussian": np.linalg.norm(exact - gauss) / np.linalg.norm(gauss),
                         "exact vs CLT": np.linalg.norm(exact - clt) / np.linalg.norm(gauss)})
    return pd.DataFrame(rows)


def variant_summary(table, invariance, n: int = 256):
    """Per variant at ``n`` filters: the weight law and activation, and crossed-bootstrap CIs of
    ``gbp~eq5``, ``gbp~image``, ``grad~image`` and the two-logit invariance of GBP and gradient.
    """
    import pandas as pd

    at_n = table[table["N"] == n]
    rows = []
    for variant in dict.fromkeys(table["variant"]):
        t = at_n[at_n["variant"] == variant]
        u = invariance[invariance["variant"] == variant]
        if t.empty:
            raise ValueError(f"variant {variant!r} was not swept at N = {n}")
        rows.append({"variant": variant, **VARIANTS[variant],
                     **{col: seeds_images_ci(t, col) for col in ("gbp~eq5", "gbp~image", "grad~image")},
                     "GBP invariance (2 logits)": seeds_images_ci(u, "gbp"),
                     "gradient invariance": seeds_images_ci(u, "gradient")})
    return pd.DataFrame(rows).set_index("variant")


def mean_pool(image, factor: int = 2) -> np.ndarray:
    """``factor x factor`` mean pooling of an (H, W, C) image (H, W divisible by ``factor``)."""
    img = np.asarray(image)
    h, w, c = img.shape
    if h % factor or w % factor:
        raise ValueError(f"image of {h}x{w} is not divisible by the pooling factor {factor}")
    return img.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))
