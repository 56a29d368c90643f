"""Loops the chapters share: maps for many models, pairwise similarity, paired differences."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ..memo import cached


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted class per image (argmax of the logits), in inference mode."""
    from .faithfulness import predict_proba

    return np.argmax(predict_proba(model, images, batch_size, softmax=False), axis=1)


@cached
def maps_for_models(models: dict, images: np.ndarray, targets: np.ndarray,
                    method: Callable, **params) -> dict[str, np.ndarray]:
    """Run one saliency method over several models: name -> maps."""
    return {name: method(model, images, targets, **params) for name, model in models.items()}


@cached
def pairwise_similarity(maps: dict[str, np.ndarray], pairs: list[tuple[str, str]],
                        metrics: dict[str, Callable], groups: dict[str, np.ndarray] | None = None,
                        ) -> pd.DataFrame:
    """Per-image similarity of the maps of each pair of models, for each metric.

    Args:
        maps: name -> maps of the same images (any shape the metrics accept).
        pairs: (name_a, name_b) pairs; each name must be in ``maps``.
        metrics: metric name -> ``f(maps_a, maps_b) -> (N,)``.
        groups: optional column name -> (N,) per-image values to attach (e.g. correctness).

    Returns:
        Long table with columns pair, a, b, metric, image, score (+ group columns).
    """
    missing = sorted({n for p in pairs for n in p} - set(maps))
    if missing:
        raise KeyError(f"no maps for {missing}; available: {sorted(maps)}")
    frames = []
    for a, b in pairs:
        for metric_name, metric in metrics.items():
            scores = np.asarray(metric(maps[a], maps[b]), dtype=float)
            frame = pd.DataFrame({"pair": f"{a} vs {b}", "a": a, "b": b, "metric": metric_name,
                                  "image": np.arange(len(scores)), "score": scores})
            for col, values in (groups or {}).items():
                frame[col] = np.asarray(values)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def paired_difference(df: pd.DataFrame, pair_a: str, pair_b: str, metric: str, seed: int = 0,
                      n_boot: int = 2000) -> tuple[float, float, float]:
    """Mean over images of score(pair_a) - score(pair_b), with a paired bootstrap 95% CI."""
    from ..stats import paired_bootstrap_diff

    sel = df[df["metric"] == metric]
    a = sel[sel["pair"] == pair_a].set_index("image")["score"]
    b = sel[sel["pair"] == pair_b].set_index("image")["score"]
    if a.empty or b.empty:
        raise KeyError(f"pairs {pair_a!r} / {pair_b!r} not found for metric {metric!r}")
    a, b = a.align(b, join="inner")
    keep = np.isfinite(a.to_numpy(dtype=float)) & np.isfinite(b.to_numpy(dtype=float))
    return paired_bootstrap_diff(a.to_numpy(dtype=float)[keep], b.to_numpy(dtype=float)[keep],
                                 n_boot=n_boot, seed=seed)
