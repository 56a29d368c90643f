import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
    """Tests that read the offline mirror are skipped with a reason when it is not configured."""
    if os.environ.get("BNN_SALIENCY_DATA"):
        return
    skip = pytest.mark.skip(reason="BNN_SALIENCY_DATA is not set (see README: data location)")
    for item in items:
        if "needs_data" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_data: reads the offline data mirror")
