"""Guided backpropagation on random shallow networks: exact maps, closed form, binarized variants.

Nie et al. (2018) explain why guided backpropagation (GBP) produces crisp, class-insensitive maps:
on a network with random weights it performs (partial) *image recovery*. Their analysis uses two
three-layer networks that this module implements exactly in NumPy, so that GBP and the plain
gradient are computed in closed form (no autodiff) for arbitrarily many filters or hidden units:

* :class:`RandomConvNet`: input image ``x`` (H, W, C) -> ``N`` filters ``w_i`` of size k x k x C,
  stride 1, no padding ("valid"), so ``z_ij = w_i . y_j`` with patch ``y_j = D_j x`` -> activation
  (ReLU, or sign with a straight-through estimator) -> fully connected logits
  ``f_k = sum_ij V[k, i, j] a_ij``.
* :class:`RandomFCNet`: ``x`` flattened to ``R^d`` -> ``N_h`` hidden ReLU units -> logits.

Notation (used by the book chapter): ``D_j`` is the 0/1 matrix (p x d, p = k*k*C) that extracts
the j-th k x k patch (row-major over the (H-k+1)(W-k+1) valid positions, each patch flattened in
(row, column, channel) order); ``D_j^T`` puts a patch back into an otherwise zero image, so
``sum_j D_j^T y_j`` is the overlap-add of patches (:func:`fold_patches`).

Backward rules, for logit k (the backward signal reaching unit (i, j) is ``V[k, i, j]``):

* gradient: ``s = sum_ij V[k,i,j] act'(z_ij) D_j^T w_i``
* GBP (Springenberg et al. 2014): ``s = sum_ij relu(V[k,i,j]) act'(z_ij) D_j^T w_i``
  (the backward signal is rectified at every ReLU).
* ReLU: ``act'(z) = 1(z > 0)`` (as TensorFlow). Sign with STE (larq ``ste_sign``):
  ``act'(z) = 1(|z| <= t)``, ``t = 1`` by default; GBP on a sign unit rectifies the backward
  signal the same way ("guided STE").

Weights are generated on demand from ``numpy.random.default_rng`` streams keyed by
``(seed, block)``: explaining logit k uses only the k-th slice of the dense layer, which is never
materialized for all logits, and a network with ``N`` filters is the prefix of the one with
``2N`` (same seed), which lets one pass produce a whole sweep over ``N``.

Closed form (expectation over the weights, Gaussian case, exact): with ``w ~ N(0, c^2 I)`` and
``V ~ N(0, c_v^2)`` independent, ``E[w 1(w.y > 0)] = c y / (sqrt(2 pi) ||y||)`` and
``E[relu(V)] = c_v / sqrt(2 pi)``, so

    E[s_GBP] = N * c * c_v / (2 pi) * sum_j D_j^T y_j / ||y_j||

(:func:`closed_form_gbp` is the unit-scale sum, :func:`expected_gbp` the scaled expectation)

while ``E[s_gradient] = 0`` (``E[V] = 0``). For Rademacher weights ``w = c * eps`` the per-patch
factor ``E[eps 1(eps.y > 0)]`` is not exactly proportional to ``y`` (see
:func:`rademacher_halfspace_mean_exact`); for sign activations ``act'`` is even in ``w``, so
``E[w 1(|w.y| <= t)] = 0`` and GBP loses its image term.

The chapter's experiments (untrained VGG16 and twins, sweeps over filters, hidden units and
binarized variants, the Rademacher factor on natural patches) are the functions of the last
section, from :func:`untrained_logit_maps` to :func:`untrained_twin_table`.

References:
    Nie, W., Zhang, Y., Patel, A. (2018). A Theoretical Explanation for Perplexing Behaviors of
        Backpropagation-based Visualizations. ICML. arXiv:1805.07039.
    Springenberg, J. T., Dosovitskiy, A., Brox, T., Riedmiller, M. (2014). Striving for
        Simplicity: The All Convolutional Net. arXiv:1412.6806.
    Courbariaux, M., Hubara, I., Soudry, D., El-Yaniv, R., Bengio, Y. (2016). Binarized Neural
        Networks. arXiv:1602.02830 (sign activations, straight-through estimator).
"""

from .closed_forms import (
    WEIGHT_LAWS,
    closed_form_gbp,
    dense_positive_mean,
    expected_gbp,
    extract_patches,
    fold_patches,
    gaussian_halfspace_mean,
    rademacher_halfspace_mean_clt,
    rademacher_halfspace_mean_exact,
)
from .random_nets import (
    VARIANTS,
    ACTIVATIONS,
    METHODS,
    RandomConvNet,
    RandomFCNet,
    conv_logits,
    conv_sweep,
    fc_predicted_correlation,
    fc_sweep,
    fc_sweep_in_law,
    relative_error,
)
