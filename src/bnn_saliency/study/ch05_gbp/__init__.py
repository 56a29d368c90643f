"""Chapter 5 (guided backpropagation): the experiments on random and untrained networks
(:mod:`.untrained`) and the trained half of Nie et al.'s Figure 1 on the twins-v2 suite
(:mod:`.twins`, with the untrained twins)."""

from .twins import (
    TRAINED_LOGITS,
    trained_claims,
    trained_invariance,
    trained_logit_maps,
    trained_statistics,
    untrained_twin_table,
)
from .untrained import (
    VARIANTS,
    conv_experiment,
    demo_images,
    display_rgb,
    error_blocks,
    fc_law_table,
    fc_width_for_correlation,
    group_cis,
    independent_errors,
    invariance_table,
    mean_pairwise_correlation,
    mean_pool,
    rademacher_patch_deviations,
    random_logit_targets,
    rms_by_size,
    rms_slope_ci,
    seeds_images_ci,
    unit_expectations,
    untrained_logit_maps,
    variant_summary,
)
