"""Every shipped twin (v1 in data/, the v2 suite in data/v2/): its weights match the recorded
sha256 and it still has the recorded accuracy."""

import numpy as np
import pytest

from bnn_saliency import data, models
from bnn_saliency.study import appendix_models

SUITES = {"v1": appendix_models.WEIGHTS_DIR, "v2": appendix_models.V2_DIR}
RECORDS = [(suite, folder, r) for suite, folder in SUITES.items() if folder.is_dir()
           for r in appendix_models.twin_records(folder)]
SUBSET = 1000  # fixed test-set subset, re-measured in CI against the offline mirror


def ids(entry):
    return f"{entry[0]}/{entry[2]['name']}"


def test_some_twins_are_shipped():
    assert any(s == "v1" for s, _, _ in RECORDS), "no trained twins in data/: run scripts/train_all.sh"


@pytest.mark.parametrize("entry", RECORDS, ids=ids)
def test_weights_match_sha256(entry):
    _, folder, record = entry
    data.verify_sha256(folder / record["weights_file"], record["weights_sha256"])


@pytest.fixture(scope="module")
def test_subset():
    cifar = data.load_cifar10()
    idx = data.cifar10_subset(cifar, SUBSET, seed=0)
    return cifar, data.to_float(cifar.x_test[idx]), cifar.y_test[idx]


def load(suite, folder, record):
    from tensorflow import keras

    from bnn_saliency.models.twins import build_twin

    if suite == "v1":
        return models.load(record["name"])
    keras.mixed_precision.set_global_policy("float32")
    net = build_twin(record["family"], record["variant"], record["width"])
    data.verify_sha256(folder / record["weights_file"], record["weights_sha256"])
    net.load_weights(folder / record["weights_file"])
    return net


@pytest.mark.needs_data
@pytest.mark.parametrize("entry", RECORDS, ids=ids)
def test_accuracy_matches_provenance(entry, test_subset):
    suite, folder, record = entry
    cifar, x, y = test_subset
    if cifar.source != record["data_source"]:
        pytest.skip(f"twin was evaluated on {record['data_source']}, data here is {cifar.source}")
    expected = record.get("subset_accuracy")
    assert expected, (f"{record['name']} has no subset_accuracy: run "
                      "`python -m bnn_saliency.models.training --float32-eval-only` for it")
    assert expected["n"] == SUBSET and expected["seed"] == 0
    model = load(suite, folder, record)
    acc = float(np.mean(np.argmax(model.predict(x, batch_size=500, verbose=0), 1) == y))
    assert abs(acc - expected["accuracy"]) <= 0.005, (
        f"{record['name']}: accuracy {acc:.4f} on the fixed 1,000-image subset, "
        f"provenance says {expected['accuracy']:.4f}")


@pytest.mark.parametrize("suite", [s for s, f in SUITES.items() if f.is_dir()])
def test_sha256sums_file_agrees_with_records(suite):
    """SHA256SUMS (for `sha256sum -c`) lists exactly the suite's weights, same hashes."""
    folder = SUITES[suite]
    records = appendix_models.twin_records(folder)
    if not records:
        pytest.skip(f"no weights in {folder} yet")
    lines = (folder / "SHA256SUMS").read_text().split("\n")
    listed = {name: digest for digest, name in (ln.split() for ln in lines if ln.strip())}
    assert listed == {r["weights_file"]: r["weights_sha256"] for r in records}


@pytest.mark.parametrize("suite", [s for s, f in SUITES.items() if f.is_dir()])
def test_matched_controls_are_within_1p5_points_of_their_bnn(suite):
    """An accuracy-matched FP control is within 1.5 points of its BNN's float32 test accuracy,
    and a checkpoint control is the candidate epoch closest to it."""
    by_name = {r["name"]: r for r in appendix_models.twin_records(SUITES[suite])}
    for control in (r for r in by_name.values() if "matched_to" in r):
        bnn = by_name[control["matched_to"]]
        target = bnn["float32_test_accuracy"]
        assert abs(control["float32_test_accuracy"] - target) <= 0.015, control["name"]
        if "checkpoint_epoch" in control:
            gaps = {int(e): abs(a - target)
                    for e, a in control["candidate_float32_test_accuracy"].items()}
            assert min(gaps, key=gaps.get) == control["checkpoint_epoch"], control["name"]
