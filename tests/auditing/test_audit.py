"""The audit on small models that are not in the study, with constructions whose verdicts are
known, the bad inputs it must refuse, and the CLI end to end on a saved .keras file."""

import json

import larq as lq
import numpy as np
import pytest
from tensorflow import keras

import bnn_saliency
from bnn_saliency.auditing import AuditInputError, battery, cli, inputs

SIZE, N = 16, 12


def _images(n=N, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, SIZE, SIZE, 3)).astype(np.float32)


def residual_fp(seed=0, softmax=False):
    """Conv stem, one residual block, an average-pool head and a dense head."""
    keras.utils.set_random_seed(seed)
    x_in = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(x_in)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="block_conv")(x)
    y = keras.layers.BatchNormalization(name="block_bn")(y)
    x = keras.layers.Add(name="block_add")([x, y])
    x = keras.layers.AveragePooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax" if softmax else None, name="head")(x)
    return keras.Model(x_in, out, name="tiny_fp")


def tiny_bnn(seed=0):
    """larq BinaryNet style: real first conv, sign activations with STE, binary kernels."""
    keras.utils.set_random_seed(seed)
    x_in = keras.Input((SIZE, SIZE, 3), name="image")
    x = lq.layers.QuantConv2D(8, 3, padding="same", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip", use_bias=False, name="conv1")(x_in)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = lq.layers.QuantConv2D(8, 3, padding="same", input_quantizer="ste_sign",
                              kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                              use_bias=False, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.Activation(lq.quantizers.SteSign(), name="act2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(3, name="head")(x)
    return keras.Model(x_in, out, name="tiny_bnn")


def dead_branch(seed=0):
    """A 4-D layer whose features are zero everywhere (ReLU of kernel 0, bias -1): Grad-CAM
    there is blank on every image; the output still depends on the input through a skip."""
    keras.utils.set_random_seed(seed)
    x_in = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(x_in)
    dead = keras.layers.Conv2D(8, 1, activation="relu", name="dead", kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant(-1.0))(x)
    merged = keras.layers.Concatenate(name="cat")([keras.layers.GlobalAveragePooling2D()(x),
                                                   keras.layers.GlobalAveragePooling2D()(dead)])
    return keras.Model(x_in, keras.layers.Dense(3, name="head")(merged), name="dead_branch")


def test_softmax_model_is_explained_through_its_logits():
    model = residual_fp(softmax=True)
    net, note = inputs.logits_model(model)
    x = _images(4)
    logits = np.asarray(net(x))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs / probs.sum(axis=1, keepdims=True), model(x),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits.sum(axis=1), 1.0)  # not probabilities
    assert "softmax" in note
    layered = keras.Model(net.inputs, keras.layers.Softmax()(net.outputs[0]))
    net2, note2 = inputs.logits_model(layered)
    np.testing.assert_allclose(net2(x), logits, rtol=1e-5, atol=1e-6)
    assert "Softmax" in note2


def test_blank_gradcam_layer_is_flagged():
    model, x = dead_branch(), _images()
    t = np.zeros(N, dtype=int)
    (result,) = battery.gradcam_layers(model, x, t, ["dead"])
    assert result.value == 100.0 and result.verdict == "fail"
    (live,) = battery.gradcam_layers(model, x, t, ["stem", "dead"])
    assert live.recommended_layer == "stem"


def test_randomizing_the_top_changes_gradient_maps():
    model, x = residual_fp(), _images()
    results = {r.check: r for r in battery.randomization(model, x, np.zeros(N, int),
                                                         "last_conv", quick=True)}
    assert set(results) == {"randomization/gradient", "randomization/gradcam",
                            "randomization/guided_backprop"}
    grad = results["randomization/gradient"]
    assert grad.high < 0.5 and grad.verdict == "pass", grad


def test_bnn_is_recognised_and_ig_completeness_fails_there():
    bnn, x = tiny_bnn(), _images()
    found = battery.binarized_layers(bnn)
    assert set(found) == {"conv1", "conv2", "act2"}
    checks = {c.check: c for c in battery.binarization(bnn, x, np.zeros(N, int), ig_steps=16)}
    assert 0 <= checks["ste_saturation"].value <= 100 and checks["ste_saturation"].verdict == "info"
    fp_checks = battery.binarization(residual_fp(), x, np.zeros(N, int), ig_steps=64)
    assert [c.check for c in fp_checks] == ["ig_completeness", "deeplift_summation"]  # no STE
    # a ReLU network with enough steps is complete to within the bound; the BNN is not
    assert fp_checks[0].high < battery.COMPLETENESS_BOUND
    assert checks["ig_completeness"].low > battery.COMPLETENESS_BOUND


def test_audit_report_has_every_check_with_intervals_and_verdicts(tmp_path):
    report = bnn_saliency.audit(residual_fp(), _images(), labels=np.arange(N) % 3, quick=True,
                                progress=False)
    names = [c.check for c in report.checks]
    assert names[:3] == ["accuracy", "gradient_vs_edges", "gradcam_blank"]
    assert "randomization/gradient" in names and "ig_completeness" in names
    table = report.verdicts
    assert table["verdict"].isin(["pass", "inconclusive", "fail", "info"]).all()
    assert report.explained == "true labels" and "accuracy" in report.notes[-1]
    data = json.loads(report.to_json(tmp_path / "r.json").read_text())
    assert {c["check"] for c in data["checks"]} == set(names)
    html = report.to_html(tmp_path / "r.html").read_text()
    assert "<h2>Summary</h2>" in html and "http" not in html.split("<body>")[1]


@pytest.mark.parametrize("build,message", [
    (lambda: keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(2, 3)]),
     "not \\(N, classes\\)"),
    (lambda: keras.Model([a := keras.Input((SIZE, SIZE, 3)), b := keras.Input((SIZE, SIZE, 3))],
                         keras.layers.Dense(3)(keras.layers.Flatten()(
                             keras.layers.Add()([a, b])))), "2 inputs"),
])
def test_models_that_are_not_classifiers_are_refused(build, message):
    with pytest.raises(AuditInputError, match=message):
        inputs.logits_model(build())


def test_bad_images_labels_layers_and_gradient_paths_are_refused():
    model, x = residual_fp(), _images()
    with pytest.raises(AuditInputError, match="the model takes"):
        inputs.check_images(np.zeros((2, 8, 8, 3), np.float32), model)
    with pytest.raises(AuditInputError, match="labels"):
        inputs.check_labels([0, 1, 7], 3, 3)
    with pytest.raises(AuditInputError, match="labels"):
        inputs.check_labels([0, 1], 3, 3)
    with pytest.raises(AuditInputError, match="candidates: .*last_conv"):
        inputs.check_layer(model, "nope")
    frozen = keras.Model(model.inputs, keras.layers.Lambda(
        lambda z: keras.backend.stop_gradient(z))(model.outputs[0]))
    with pytest.raises(AuditInputError, match="no gradient"):
        inputs.check_gradients(frozen, x)
    broken = keras.Model(model.inputs, keras.layers.Lambda(lambda z: z / 0.0)(model.outputs[0]))
    with pytest.raises(AuditInputError, match="not finite"):
        inputs.check_gradients(broken, x)


def test_image_folder_errors_name_the_bad_files(tmp_path):
    from PIL import Image

    with pytest.raises(AuditInputError, match="no JPEG or PNG"):
        inputs.load_folder(tmp_path, (SIZE, SIZE))
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(AuditInputError, match="bad.jpg"):
        inputs.load_folder(tmp_path, (SIZE, SIZE))
    x, names = inputs.load_folder(tmp_path, (SIZE, SIZE), skip_bad=True)
    assert x.shape == (1, SIZE, SIZE, 3) and names == ["good.png"]


def test_cli_end_to_end_on_a_saved_keras_file(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "tiny.keras"
    tiny_bnn().save(path)
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    assert cli.main([str(path), "--images", str(folder), "--quick", "--out",
                     str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["explained"] == "predicted classes" and data["images"] == 6
    assert any(c["check"] == "ste_saturation" for c in data["checks"])
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert cli.main([str(tmp_path / "missing.keras"), "--images", str(folder)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_noise_sensitivity_flags_noise_that_changes_the_decision():
    """Oracle: a model that classifies by the sign of the image mean minus 0.5 flips on noisy
    copies of images whose mean is within 0.001 of 0.5 at 20% noise (the copies' mean moves
    by ~0.2 / sqrt(768) = 0.007), never at 0.1% noise."""
    x_in = keras.Input((SIZE, SIZE, 3))
    m = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(1, 1, use_bias=False,
                                                                  kernel_initializer="ones")(x_in))
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([[30., -30.]]),
                             bias_initializer=keras.initializers.Constant([-45., 45.]))(m)
    model = keras.Model(x_in, out)
    x = _images()  # value range ~1, means moved to 0.5 +- 0.001: the noise mean decides
    near = x - x.mean(axis=(1, 2, 3), keepdims=True) + 0.5 + 0.001 * (-1) ** np.arange(N)[
        :, None, None, None]
    near = near.astype(np.float32)
    (r,) = battery.noise_sensitivity(model, near, np.zeros(N, int), noises=(0.001, 0.2))
    assert r.verdict == "fail" and r.table.loc["0%", "flip %"] == 0.0, r.table
    assert "no tested noise level" not in r.advice


def test_faithfulness_excess_is_positive_for_a_model_that_reads_one_pixel():
    """Oracle: the logit depends on one pixel only; the gradient map puts it first, so
    deletion removes the class at once and insertion restores it at once: its excess over a
    random map is positive."""
    x_in = keras.Input((SIZE, SIZE, 3))
    feat = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones",
                               name="feat")(x_in)
    w = np.zeros((SIZE * SIZE, 2), np.float32)
    w[SIZE * 5 + 7, 0] = 20.0
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(w),
                             bias_initializer=keras.initializers.Constant([-10.0, 0.0]))(
        keras.layers.Flatten()(feat))
    model = keras.Model(x_in, out)
    x = _images() * 0.2
    x[:, 5, 7, :] = 1.0
    results = {r.check: r for r in battery.faithfulness_ranking(model, x, np.zeros(N, int),
                                                                 "feat", n_steps=8)}
    grad = results["faithfulness/gradient"]
    assert grad.low > 0 and grad.verdict == "pass", grad
    assert list(results)[0] in ("faithfulness/gradient", "faithfulness/integrated_gradients",
                                "faithfulness/smoothgrad")


def centre_blind(seed=0, margin=4):
    """The output ignores the input's centre: the image and the last features are multiplied
    by a mask that is zero on the central (SIZE - 2 margin)^2 square."""
    keras.utils.set_random_seed(seed)
    mask = np.ones((1, SIZE, SIZE, 1), np.float32)
    mask[:, margin:-margin, margin:-margin] = 0.0
    x_in = keras.Input((SIZE, SIZE, 3), name="image")
    blind = keras.layers.Lambda(lambda z: z * mask, name="mask_input")(x_in)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(blind)
    x = keras.layers.Lambda(lambda z: z * mask, name="masked_features")(x)
    out = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(x_in, out, name="centre_blind"), margin


def test_maps_of_every_audited_method_avoid_the_ignored_centre():
    model, margin = centre_blind()
    x, t = _images(), np.arange(N) % 3
    centre = (slice(None), slice(margin, -margin), slice(margin, -margin))
    for name, method in battery.method_suite("masked_features").items():
        maps = np.abs(np.asarray(method(model, x, t)))
        maps = maps.max(axis=-1) if maps.ndim == 4 else maps
        assert maps[centre].max() == 0.0, name  # exactly: the centre has no path to the logit
        assert maps.max() > 0, name


def test_deeplift_sums_to_delta_on_fp_and_bnn_but_not_through_a_product():
    """Oracle: the summation-to-delta axiom (exact for the Rescale rule on elementwise
    nonlinearities, affine layers, pooling and additions; sign activations included), broken
    by a multiplicative interaction of two branches, which the rule does not cover."""
    x, t = _images(), np.zeros(N, int)
    for model in (residual_fp(), tiny_bnn()):
        (dl,) = [c for c in battery.binarization(model, x, t, ig_steps=8)
                 if c.check == "deeplift_summation"]
        assert dl.high < battery.COMPLETENESS_BOUND and dl.verdict == "pass", (model.name, dl)
    keras.utils.set_random_seed(1)
    x_in = keras.Input((SIZE, SIZE, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x_in)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x_in)
    product = keras.layers.Multiply()([a, b])
    gated = keras.Model(x_in, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(
        product)))
    (dl,) = [c for c in battery.binarization(gated, x, t, ig_steps=8)
             if c.check == "deeplift_summation"]
    assert dl.low > battery.COMPLETENESS_BOUND and dl.verdict == "fail", dl


def test_accuracy_check_passes_a_model_on_its_own_predictions_and_fails_at_zero():
    model, x = residual_fp(), _images()
    predicted = np.argmax(model.predict(x, verbose=0), axis=1)
    (own,) = battery.accuracy(model, x, predicted)
    assert own.value == 100.0 and own.verdict == "pass"
    (wrong,) = battery.accuracy(model, x, (predicted + 1) % 3)
    assert wrong.value == 0.0 and wrong.verdict == "fail"
    assert wrong.rule.lo == pytest.approx(200 / 3)  # twice chance for 3 classes


def test_every_check_has_a_figure_and_reports_compare_in_a_grid():
    import matplotlib.pyplot as plt

    from bnn_saliency.auditing import figures

    reports = {name: bnn_saliency.audit(build(), _images(), labels=np.arange(N) % 3,
                                        quick=True, progress=False)
               for name, build in (("fp", residual_fp), ("bnn", tiny_bnn))}
    for check in reports["bnn"].checks:
        fig = figures.check_figure(check)
        assert check.verdict in fig.axes[0].get_title()
        plt.close(fig)
    grid = figures.verdict_grid(reports)
    labels = [t.get_text() for t in grid.axes[0].get_yticklabels()]
    assert "ste_saturation" in labels and "accuracy" in labels  # union of both reports
    plt.close(grid)
