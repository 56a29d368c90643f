"""Beyond plain gradients: Integrated Gradients vs DeepLIFT, faithfulness rankings, sanity.

The loops behind the chapter "Beyond plain gradients" (``book/06_beyond_gradients``):

* **completeness**: :func:`relative_completeness_error` and :func:`ig_convergence` (the
  completeness error of integrated gradients as the number of Riemann steps grows);
* **cost**: :func:`time_per_map` (wall-clock seconds per map, after a warm-up call);
* **maps of every method**: :data:`FAITHFULNESS_METHODS` (the settings of each method in
  this chapter) and :func:`method_maps`; :func:`ranking_map` turns any map into the 2-D
  ranking map a perturbation metric consumes; :func:`random_maps` is the chance baseline;
* **faithfulness**: :func:`perturbation_scores` (deletion and insertion AUC of many maps of
  one model, compiled forward passes), :func:`excess_over` (per-image score minus the
  random map's), :func:`rank_methods` and :func:`ranking_table` (one ranking, FP vs BNN);
* **class sensitivity**: :func:`runner_up` (the most likely other class);
* **sanity**: :func:`cascading_table` (Adebayo et al.'s cascading parameter randomization,
  block by block from the logits down, through :func:`bnn_saliency.evaluation.randomization.cascading`);
* **the page's summaries, sentences and figures**: intervals pooled over a twin's seeds
  (:func:`median_error_ci`, :func:`agreement_ci`, :func:`pooled_ci`, :func:`excess_gap`,
  :func:`step_cis`), :func:`timing_table`, :func:`panel_maps`, phrases
  (:func:`random_reference_phrase`, :func:`comparison_phrase`), display tables
  (:func:`wide_cam_scores`, :func:`cascade_wide`), the figures
  (:func:`ig_convergence_figure`, :func:`faithfulness_heatmap`, :func:`cascading_figure`)
  and :func:`claim`.

References:
    Sundararajan, Taly & Yan 2017, "Axiomatic attribution for deep networks", arXiv:1703.01365.
    Shrikumar, Greenside & Kundaje 2017, "Learning important features through propagating
    activation differences" (DeepLIFT), arXiv:1704.02685.
    Ancona et al. 2018, "Towards better understanding of gradient-based attribution methods
    for deep neural networks", ICLR, arXiv:1711.06104.
    Petsiuk, Das & Saenko 2018, "RISE" (deletion / insertion), arXiv:1806.07421.
    Adebayo et al. 2018, "Sanity checks for saliency maps", arXiv:1810.03292.
"""

from .experiments import (
    agreement,
    cam_scores,
    cascading_table,
    class_sensitivity,
    class_sensitivity_table,
    coarseness_table,
    completeness_table,
    excess_over,
    faithfulness_scores,
    ig_convergence,
    layer_block_key,
    maps_by_model,
    method_maps,
    per_image_mean,
    perturbation_scores,
    random_maps,
    rank_methods,
    ranking_map,
    ranking_table,
    roughness,
    runner_up,
    time_per_map,
)
from .summaries import (
    agreement_ci,
    agreement_values,
    cascade_wide,
    cascading_figure,
    claim,
    comparison_phrase,
    excess_gap,
    faithfulness_heatmap,
    ig_convergence_figure,
    ig_sweep,
    median_error_ci,
    panel_maps,
    pooled_ci,
    random_reference_phrase,
    step_cis,
    timing_table,
    wide_cam_scores,
)
