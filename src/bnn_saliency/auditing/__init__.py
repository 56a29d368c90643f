"""Audit your own network: the study's battery of saliency checks on any Keras/larq image
classifier, as a report card.

    report = bnn_saliency.audit(model, images, labels)   # labels optional
                                                          # (= bnn_saliency.auditing.audit)
    report.verdicts            # one row per check: verdict, number, interval, rule
    report.to_html("report.html"); report.to_json("report.json")

or from the shell: ``python -m bnn_saliency audit model.keras --cifar10 100 --quick``.

Checks (:mod:`bnn_saliency.auditing.battery`): gradient vs an edge detector; Grad-CAM's blank
maps and faithfulness at every candidate layer; SmoothGrad's noise levels (prediction flips,
map stability); cascading randomization of the top of the network for Gradient, Grad-CAM,
guided backprop (and SmoothGrad); the methods' faithfulness against a random map
(insertion - deletion); binarization awareness (straight-through saturation, integrated
gradients' completeness, DeepLIFT's summation-to-delta); with labels, the accuracy
against chance first (a model near chance has no decision worth explaining).
"""

from __future__ import annotations

import numpy as np

from . import battery
from .battery import AUDIT_VERDICTS, CheckResult
from .inputs import (
    AuditInputError, candidate_layers, check_gradients, check_images, check_labels,
    check_layer, logits_model,
)
from .report import AuditReport

__all__ = ["AUDIT_VERDICTS", "AuditInputError", "AuditReport", "CheckResult", "audit"]


def audit(model, images, labels=None, *, layer: str | None = None, quick: bool = False,
          progress: bool = True, seed: int = 0) -> AuditReport:
    """Run the battery on ``model`` and return its :class:`AuditReport`.

    Args:
        model: a Keras (larq) classifier, one image input, one ``(N, classes)`` output (logits,
            or softmax: then its pre-softmax logits are explained).
        images: float ``(N, H, W, C)`` in the model's input space.
        labels: optional true classes; without them the predicted classes are explained.
        layer: the Grad-CAM layer of the randomization check (default: the recommended one).
        quick: a reduced battery (no SmoothGrad in the randomization check, fewer IG steps).
        progress: a progress bar over the checks (tqdm).
        seed: seed of the randomization check.
    """
    net, note = logits_model(model)
    x = check_images(images, net)
    n_classes = int(net.outputs[0].shape[1])
    truth = check_labels(labels, len(x), n_classes)
    layer = check_layer(net, layer)
    check_gradients(net, x)
    predicted = np.argmax(np.asarray(net.predict(x, batch_size=256, verbose=0)), axis=1)
    targets = truth if truth is not None else predicted
    notes = [note]
    if truth is not None:
        notes.append(f"accuracy on these images: {np.mean(predicted == truth):.1%}")
    layers = candidate_layers(net)
    steps = [("accuracy", lambda: battery.accuracy(net, x, truth))] if truth is not None else []
    steps += [
        ("gradient vs edges", lambda: battery.gradient_vs_edges(net, x, targets)),
        ("Grad-CAM layers", lambda: battery.gradcam_layers(net, x, targets, layers)),
        ("noise sensitivity", lambda: battery.noise_sensitivity(
            net, x, targets, noises=(0.02, 0.05, 0.10, 0.20) if quick else
            (0.01, 0.02, 0.05, 0.10, 0.20, 0.30), seed=seed)),
        ("randomization", None),
        ("faithfulness", None),
        ("binarization", lambda: battery.binarization(net, x, targets,
                                                      ig_steps=16 if quick else 32)),
    ]
    checks: list[CheckResult] = []
    chosen = layer
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="audit")
    for name, run in steps:
        if name == "randomization":  # needs the layer the Grad-CAM check recommends
            checks += battery.randomization(net, x, targets, chosen, quick=quick, seed=seed)
        elif name == "faithfulness":
            checks += battery.faithfulness_ranking(net, x, targets, chosen,
                                                   n_steps=8 if quick else 16, seed=seed)
        else:
            checks += run()
        if name == "Grad-CAM layers" and chosen is None:
            chosen = checks[-1].recommended_layer
    settings = {"quick": quick, "seed": seed, "candidate layers": layers,
                "randomization layer": chosen}
    return AuditReport(model.name, len(x), "true labels" if truth is not None
                       else "predicted classes", notes, checks, settings)
