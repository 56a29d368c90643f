"""Chapter 2 (SmoothGrad): noise sweeps, map quality, best noise levels, the randomization
index and the propagation of noise through depth (:mod:`.sweep`); the per-image records of
the sweep on the twins-v2 suite, the statistics of its registered protocol (cross-seed pairs,
seeds>images bootstrap, accuracy-matched controls) and its verdicts (:mod:`.protocol`; the
chapter moves to it once the records of the whole suite are committed)."""

from . import protocol
from .sweep import (
    INSERTION,
    ArgmaxBootstrap,
    amplification_ci,
    argmax_bootstrap,
    best_table,
    cross_difference,
    curves,
    direction_word,
    display,
    logit_change,
    n_check_counts,
    n_check_table,
    propagation_tables,
    quality_table,
    randomization_table,
    relative_depth,
    requantize,
    seed_bound,
    sign_flip_fraction,
    smoothgrad_display,
    smoothgrad_halves,
    start_probabilities,
    values_at,
)
