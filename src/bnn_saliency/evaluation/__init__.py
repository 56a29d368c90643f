"""Metrics for saliency maps: similarity, complexity (noise) and faithfulness.

Three families, each with a uniform call shape:

* **Similarity** ``metric(maps_a, maps_b) -> (N,)``: one score per pair of maps, as used by the
  model- and data-randomization sanity checks of Adebayo et al. (2018).
* **Complexity** ``metric(maps) -> (N,)``: how concentrated / noisy a map is.
* **Faithfulness** ``metric(model, images, targets, maps, **kw) -> (N,)``: how the model's softmax
  probability of the target class reacts when the input is perturbed according to the map.

Maps are numpy arrays ``(N, H, W)`` or ``(N, H, W, C)``. Every function validates its input
(empty batches, NaN/inf values, shape mismatches raise ``ValueError``) and is pure: nothing is
cached or modified in place.

**Undefined scores are NaN.** A correlation with a constant map, the SSIM/HOG of a map that cannot
be min-max normalized (constant), or the entropy/Gini/total variation of an all-zero map is
undefined; these functions return ``nan`` for that sample (never an arbitrary 0) so that
aggregates must use ``np.nanmean`` and the number of undefined samples can be reported.
:func:`bnn_saliency.stats.bootstrap_ci` uses ``np.nanmean`` by default.

Every public metric carries two attributes, like Quantus metrics: ``category`` (``"similarity"``,
``"complexity"``, ``"faithfulness"``) and ``score_direction`` (``"higher"`` or ``"lower"`` is
better). For similarity functions ``"higher"`` means *more similar*; in a randomization sanity
check the desirable outcome is the opposite (low similarity to the original map). They are
collected in the registries :data:`SIMILARITY`, :data:`COMPLEXITY` and :data:`FAITHFULNESS`.

References:
    Adebayo, J., Gilmer, J., Muelly, M., Goodfellow, I., Hardt, M., Kim, B. (2018). Sanity Checks
        for Saliency Maps. NeurIPS. arXiv:1810.03292.
    Petsiuk, V., Das, A., Saenko, K. (2018). RISE: Randomized Input Sampling for Explanation of
        Black-box Models. BMVC. arXiv:1806.07421.
    Chattopadhay, A., Sarkar, A., Howlader, P., Balasubramanian, V. N. (2018). Grad-CAM++:
        Generalized Gradient-based Visual Explanations for Deep Convolutional Networks. WACV.
        arXiv:1710.11063.
    Zhang, H., Torres, F., Sicre, R., Avrithis, Y., Ayache, S. (2023). Opti-CAM: Optimizing
        saliency maps for interpretability. arXiv:2301.07002.
    Torres Figueroa, F., Zhang, H., Sicre, R., Avrithis, Y., Ayache, S. (2024). A Learning Paradigm
        for Interpretable Gradients. arXiv:2404.15024.
    Chalasani, P., Chen, J., Chowdhury, A. R., Jha, S., Wu, X. (2020). Concise Explanations of
        Neural Networks using Adversarial Training. ICML. arXiv:1810.06583.
    Bhatt, U., Weller, A., Moura, J. M. F. (2020). Evaluating and Aggregating Feature-based Model
        Explanations. IJCAI. arXiv:2005.00631.
    Hedström, A. et al. (2023). Quantus: An Explainable AI Toolkit for Responsible Evaluation of
        Neural Network Explanations and Beyond. JMLR 24(34). arXiv:2202.06861.
"""

from .compare import maps_for_models, paired_difference, pairwise_similarity, predict
from .complexity import entropy, gini, total_variation
from .faithfulness import (
    average_drop,
    average_drop_increase_gain,
    average_gain,
    cam_faithfulness,
    deletion_auc,
    explanation_images,
    increase_in_confidence,
    insertion_auc,
    perturbation_curves,
    predict_proba,
    top_fraction_mask,
)
from .perturbation import (
    DEFAULT_BATCH_SIZE,
    amplification,
    depth_layers,
    noisy_copies,
    propagation,
    relative_change,
)
from .randomization import (
    COLUMNS,
    SIMILARITY_MEASURES,
    VIEWS,
    SanityRun,
    cascade_blocks,
    cascading,
    compare_to_reference,
    compute_views,
    independent,
    map_views,
    quantus_crosscheck,
    quantus_explain_func,
    quantus_layers,
    quantus_mprt,
    quantus_permutation,
    score_similarity,
)
from .registry import COMPLEXITY, FAITHFULNESS, REDUCTIONS, SIMILARITY
from .similarity import (
    agreement,
    default_pixels_per_cell,
    edge_map,
    hog_pearson,
    pearson,
    spearman_abs,
    spearman_signed,
    ssim,
)
