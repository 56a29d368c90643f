"""Chapter 2 (SmoothGrad) on the twins-v2 suite: the per-image records of the noise sweep,
the statistics of its registered protocol (cross-seed pairs, seeds>images bootstrap,
accuracy-matched controls) and its verdicts (:mod:`.protocol`); the SmoothGrad halves, map
quality, randomization index and the propagation of noise through depth they are built from
(:mod:`.sweep`)."""

from .protocol import (
    HALF_SEEDS,
    INSERTION,
    MEASURES,
    N_HALF,
    NOISES,
    V2_CLAIMS,
    best_noise,
    best_noise_table,
    ci_text,
    flip_sigma,
    keyed_random_maps,
    keyed_requantize,
    randomization_index,
    recorded,
    seed_ratio,
    smoothgrad_maps,
    sweep_curves,
    sweep_records,
    v2_claims,
    v2_statistics,
    values,
)
from .sweep import (
    display,
    propagation_tables,
    quality_table,
    randomization_table,
    relative_depth,
    sign_flip_fraction,
    smoothgrad_halves,
    start_probabilities,
)
