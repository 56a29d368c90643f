"""ImageNet mode end to end, offline: the Gradient and Grad-CAM chapters' code path on the
paper's ten networks built with random weights (``weights=None``) on two ImageNet sample
images. It checks that every step runs on every architecture and yields maps of the right
shapes with finite values; what the maps show is the chapters' business (it needs the
pretrained weights)."""

from __future__ import annotations

import numpy as np
import pytest

from bnn_saliency import evaluation, methods, models, postprocess
from bnn_saliency.study import ch03_gradcam, common

pytestmark = pytest.mark.needs_data

SIZE = (224, 224)
SIM_METRICS = {"Spearman |map|": evaluation.spearman_abs, "SSIM": evaluation.ssim,
               "HOG corr.": evaluation.hog_pearson}


@pytest.fixture(scope="module")
def study():
    return common.imagenet_study(2, weights=None)


def _all_pairs(study):
    return [p for group in study.pairs.values() for p in group]


def test_study_covers_the_ten_networks(study):
    assert list(study.models) == list(models.IMAGENET_NAMES)
    assert study.images.shape == (2,) + SIZE + (3,) and study.images.dtype == np.float32
    assert 0 <= study.images.min() and study.images.max() <= 255 and study.images.max() > 1
    assert set(study.gradcam_layers) == set(study.models)
    fp = [n for n in study.models if models.get_spec(n).kind == "imagenet-fp"]
    assert len(fp) == 5 and len(study.pairs["FP vs BNN"]) == 25
    assert len(study.pairs["FP vs FP"]) == 10 and len(study.pairs["BNN vs BNN"]) == 10


def test_gradient_chapter_path(study):
    raw = evaluation.maps_for_models(study.models, study.images, study.labels, methods.gradient,
                                  batch_size=2)
    for name, m in raw.items():
        assert m.shape == study.images.shape and m.dtype == np.float32, name
        assert np.all(np.isfinite(m)) and np.any(m != 0), f"{name}: gradient all zero or not finite"
    abs_maps = {n: postprocess.tfkerasvis_style(m) for n, m in raw.items()}
    abs_maps["edge"] = postprocess.normalize(evaluation.edge_map(study.images))
    signed = {n: postprocess.reduce_channels(m, "sum") for n, m in raw.items()}
    for m in list(abs_maps.values()) + list(signed.values()):
        assert m.shape == (2,) + SIZE and np.all(np.isfinite(m))
    sims = evaluation.pairwise_similarity(abs_maps, _all_pairs(study), SIM_METRICS)
    assert len(sims) == len(_all_pairs(study)) * len(SIM_METRICS) * 2
    assert np.all(np.isfinite(sims["score"])) and sims["score"].between(-1, 1).all()
    preds = {n: evaluation.predict(m, study.images) for n, m in study.models.items()}
    assert all(p.shape == (2,) and p.max() < 1000 for p in preds.values())


def test_gradcam_chapter_path(study):
    cams = {n: methods.gradcam(m, study.images, study.labels, layer=study.gradcam_layers[n],
                                batch_size=2)
            for n, m in study.models.items()}
    for name, cam in cams.items():
        h, w = study.models[name].get_layer(study.gradcam_layers[name]).output.shape[1:3]
        assert cam.shape == (2, h, w) and np.all(np.isfinite(cam)) and cam.min() >= 0, name
    up = {n: postprocess.normalize(postprocess.upsample(c, SIZE)) for n, c in cams.items()}
    up["edge"] = postprocess.normalize(evaluation.edge_map(study.images))
    for m in up.values():
        assert m.shape == (2,) + SIZE and np.all(np.isfinite(m))
    sims = evaluation.pairwise_similarity(up, _all_pairs(study), {"Spearman": evaluation.spearman_abs})
    assert len(sims) == len(_all_pairs(study)) * 2
    # NaN only where a map is constant (Spearman undefined), e.g. an all-zero ReLU'd CAM
    constant = {n for n, m in up.items() if np.any(np.ptp(m.reshape(2, -1), axis=1) == 0)}
    bad = sims[~np.isfinite(sims["score"])]
    assert all(a in constant or b in constant for a, b in zip(bad["a"], bad["b"])), (
        f"Spearman undefined for pairs of non-constant maps: {sorted(set(bad['pair']))[:5]}")
    # the Grad-CAM chapter's own helpers: signed maps and their three variants
    parts = ch03_gradcam.model_cams(study.models, study.images, study.labels, study.gradcam_layers)
    for name, p in parts.items():
        variants = methods.cam_variants(p.signed)
        assert p.signed.shape == cams[name].shape and np.all(np.isfinite(p.signed))
        np.testing.assert_allclose(variants["Grad-CAM"], np.maximum(p.signed, 0), rtol=1e-5,
                                   atol=1e-6 * (np.abs(p.signed).max() + 1e-30))
        np.testing.assert_allclose(cams[name], np.maximum(p.signed, 0), rtol=1e-4,
                                   atol=1e-5 * (np.abs(p.signed).max() + 1e-30))
