"""Tests of bnn_saliency.plotting: the figure functions draw what they are given.

Oracles: the data each axis holds (images, line coordinates, titles, labels) compared with the
inputs, and errors for inputs that do not fit the layout.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bnn_saliency import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _img(v, size=4):
    return np.full((size, size, 3), v)


def test_image_grid_layout_titles_and_blanks():
    panels = [[_img(0.1), _img(0.2), _img(0.3)], [_img(0.4), None]]
    fig = plotting.image_grid(panels, titles=[["a", None, "c"], ["d"]], row_labels=["r0", "r1"],
                              figsize=(3, 2), title_size=7, label_size=6)
    axes = np.array(fig.axes).reshape(2, 3)
    np.testing.assert_allclose(axes[0, 2].images[0].get_array()[0, 0], [0.3] * 3)
    assert len(axes[1, 1].images) == 0 and len(axes[1, 2].images) == 0
    assert [ax.get_title() for ax in axes[0]] == ["a", "", "c"] and axes[1, 0].get_title() == "d"
    assert axes[0, 0].get_ylabel() == "r0" and axes[1, 0].get_ylabel() == "r1"
    assert axes[0, 0].title.get_fontsize() == 7
    assert all(len(ax.get_xticks()) == 0 for ax in axes.ravel())
    with pytest.raises(ValueError, match="empty"):
        plotting.image_grid([])
    with pytest.raises(ValueError, match="row_labels"):
        plotting.image_grid(panels, row_labels=["only one"])
    with pytest.raises(ValueError, match="titles"):
        plotting.image_grid(panels, titles=[["a", "b", "c", "d"], []])


def test_filter_sweep_lines():
    sizes = [1, 4, 16, 64, 256, 1024]
    rms = np.array([1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125])
    corr = pd.DataFrame({"gbp~eq5": np.linspace(0, 1, 6), "gbp~image": np.linspace(0, 0.5, 6),
                         "grad~image": np.zeros(6)}, index=sizes)
    units = [(sizes, rms * 1.1), (sizes, rms * 0.9)]
    fig = plotting.filter_sweep([_img(k / 6) for k in range(6)], sizes, units, rms, corr)
    assert len(fig.axes) == 8  # 6 thumbnails, the error panel, the correlation panel
    assert [ax.get_title() for ax in fig.axes[:6]] == [f"N = {n}" for n in sizes]
    err_ax = fig.axes[6]
    lines = err_ax.get_lines()
    assert len(lines) == 4  # two units, RMS, slope -1/2
    np.testing.assert_allclose(lines[2].get_ydata(), rms)
    np.testing.assert_allclose(lines[3].get_ydata(), rms[0] * np.asarray(sizes, float) ** -0.5)
    np.testing.assert_allclose(fig.axes[7].get_lines()[0].get_ydata(), corr["gbp~eq5"])
    with pytest.raises(ValueError):
        plotting.filter_sweep([_img(0)], sizes, units, rms, corr)


def test_width_sweep_lines_and_references():
    sizes = np.array([10, 100, 1000])
    fig = plotting.width_sweep(sizes, [0.1, 0.2, 0.3], [0.0, 0.0, 0.01], [0.15, 0.25, 0.35],
                               [([100], [0.22]), ([1000], [0.31])], reference=0.9,
                               reference_label="conv", input_dim=500)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:4] == ["FC GBP (exact law)", "FC gradient", "prediction", "explicit nets"]
    assert "conv" in labels
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), [0.15, 0.25, 0.35])


def test_ci_panels_and_group_histograms():
    rows = pd.DataFrame({"model": ["a", "b"], "mean": [0.2, 0.5], "low": [0.1, 0.4],
                         "high": [0.3, 0.6], "kind": ["FP", "BNN"]})
    fig = plotting.ci_panels({"AD": rows, "blank": rows}, x="model", hue="kind", zero_line=True)
    assert [ax.get_title() for ax in fig.axes] == ["AD", "blank"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    with pytest.raises(ValueError):
        plotting.ci_panels({}, x="model")
    table = pd.DataFrame({"kind": ["FP"] * 50 + ["BNN"] * 50,
                          "v": np.r_[np.zeros(50), np.ones(50)]})
    fig = plotting.group_histograms(table, ["v"], "kind", ["FP", "BNN"], bins=5)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "v" and len(ax.patches) == 10
    with pytest.raises(KeyError):
        plotting.group_histograms(table, ["w"], "kind", ["FP"])


def test_depth_profiles_one_line_per_family_kind_tensor():
    rows = []
    for kind in ("FP", "BNN"):
        for tensor in ("block", "act"):
            for block in (1, 2, 3):
                for measure in ("AD", "blank"):
                    rows.append({"measure": measure, "family": "vgg", "kind": kind,
                                 "tensor": tensor, "block": block, "mean": block * 0.1,
                                 "low": 0.0, "high": 1.0})
    fig = plotting.depth_profiles(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["AD", "blank"]
    assert len(fig.axes[0].containers) == 4  # errorbar containers: 2 kinds x 2 tensors
    xs = [np.asarray(c.lines[0].get_xdata(), dtype=float) for c in fig.axes[0].containers]
    offsets = sorted({round(float(v), 6) for x in xs for v in x - np.round(x)})
    assert offsets == [-0.1, 0.1]  # "block" at -0.1, "act" at +0.1


def test_overlay_rows_and_noise_strip():
    imgs = np.stack([_img(0.2), _img(0.8)])
    maps = {"m1": np.zeros((2, 4, 4)), "m2": np.ones((2, 4, 4))}
    fig = plotting.overlay_rows(imgs, maps, col_titles=["cat", "dog"])
    axes = np.array(fig.axes).reshape(3, 2)
    assert [ax.get_title() for ax in axes[0]] == ["cat", "dog"]
    assert [axes[i, 0].get_ylabel() for i in range(3)] == ["image", "m1", "m2"]
    assert len(axes[2, 1].images) == 2  # image, then the overlaid map
    with pytest.raises(ValueError):
        plotting.overlay_rows(imgs, {"m": np.zeros((1, 4, 4))})
    fig = plotting.noise_strip(_img(0.5), {"fp": np.zeros((3, 4, 4)), "bnn": np.ones((3, 4, 4))},
                               [0.0, 0.1, 0.5])
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[0, 1:]] == ["0%", "10%", "50%"]
    assert axes[1, 0].get_ylabel() == "bnn"
    with pytest.raises(ValueError):
        plotting.noise_strip(_img(0.5), {"fp": np.zeros((2, 4, 4))}, [0.0, 0.1, 0.5])


def test_noise_curves_and_propagation_panels():
    rows = [{"measure": "q", "model": m, "noise": s, "mean": v + s, "low": v, "high": v + 1}
            for m, v in (("vgg-fp-s0", 0.0), ("vgg-bnn-s0", 1.0)) for s in (0.0, 0.1, 0.2)]
    rows.append({"measure": "q", "model": "vgg-bnn-s1", "noise": 0.2, "mean": 5.0, "low": 4.0,
                 "high": 6.0})
    fig = plotting.noise_curves(pd.DataFrame(rows), ["vgg-fp-s0", "vgg-bnn-s0", "vgg-bnn-s1"],
                                [0.0, 0.1, 0.2], ["q"], main=("vgg-fp-s0", "vgg-bnn-s0"),
                                hlines={"q": 0.0})
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[-1].get_ydata(), [0.0, 0.0])  # the reference line
    np.testing.assert_allclose(lines[0].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(lines[1].get_ydata(), [1.0, 1.1, 1.2])
    np.testing.assert_allclose(lines[2].get_xdata(), [2])  # the seed-1 twin, one cross
    assert lines[1].get_color() == "tab:red"
    pre = pd.DataFrame([{"model": m, "noise": s, "rdepth": d, "rel_change": 0.1 + d}
                        for m in ("vgg-fp-s0", "resnet-bnn-s0") for s in (0.02, 0.2)
                        for d in (0.0, 0.5, 1.0)])
    flips = pd.DataFrame([{"model": m, "noise": s, "flip_rate": s}
                          for m in ("vgg-fp-s0", "resnet-bnn-s0") for s in (0.02, 0.2)])
    fig = plotting.propagation_panels(pre, flips, ["vgg-fp-s0", "resnet-bnn-s0"],
                                      main=("vgg-fp-s0",))
    assert fig.axes[0].get_lines()[1].get_linestyle() == "--"  # the ResNet
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_xdata(), [2.0, 20.0])


def test_twin_style_of_suite_names_and_controls():
    assert plotting.twin_style("v2:vgg-bnn-s0") == ("tab:red", "s", "-")
    assert plotting.twin_style("v2:vgg-fp-s1") == ("tab:blue", "o", ":")
    assert plotting.twin_style("v2:vgg-fp-s0-at-bnn-acc")[0] == "tab:grey"
    assert plotting.twin_style("resnet-fp-s0")[2] == "--"
