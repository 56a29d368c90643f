"""Every shipped twin: its weights match the recorded sha256 and it still has the recorded accuracy."""

import numpy as np
import pytest

from bnn_saliency import data, report

RECORDS = report.twin_records()
SUBSET = 1000  # fixed test-set subset, re-measured in CI against the offline mirror


def test_some_twins_are_shipped():
    assert RECORDS, "no trained twins in data/: run scripts/train_all.sh"


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["name"])
def test_weights_match_sha256(record):
    data.verify_sha256(report.WEIGHTS_DIR / record["weights_file"], record["weights_sha256"])


@pytest.fixture(scope="module")
def test_subset():
    cifar = data.load_cifar10()
    idx = data.cifar10_subset(cifar, SUBSET, seed=0)
    return cifar, data.to_float(cifar.x_test[idx]), cifar.y_test[idx]


@pytest.mark.needs_data
@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["name"])
def test_accuracy_matches_provenance(record, test_subset):
    from bnn_saliency import models

    cifar, x, y = test_subset
    if cifar.source != record["data_source"]:
        pytest.skip(f"twin was evaluated on {record['data_source']}, data here is {cifar.source}")
    expected = record["subset_accuracy"]
    assert expected["n"] == SUBSET and expected["seed"] == 0
    model = models.load(record["name"])
    acc = float(np.mean(np.argmax(model.predict(x, batch_size=500, verbose=0), 1) == y))
    assert abs(acc - expected["accuracy"]) <= 0.005, (
        f"{record['name']}: accuracy {acc:.4f} on the fixed 1,000-image subset, "
        f"provenance says {expected['accuracy']:.4f}")


def test_sha256sums_file_agrees_with_records():
    """data/SHA256SUMS (for `sha256sum -c`) lists exactly the shipped weights, same hashes."""
    lines = (report.WEIGHTS_DIR / "SHA256SUMS").read_text().split("\n")
    listed = {name: digest for digest, name in (ln.split() for ln in lines if ln.strip())}
    assert listed == {r["weights_file"]: r["weights_sha256"] for r in RECORDS}
