"""Saliency methods on binarized vs full-precision networks: the package behind the book."""

import logging
import os

# TensorFlow's start-up chatter (C++) and retracing notices (Python logger) would make a
# notebook's stored outputs differ between runs; keep only errors unless the user set a level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.ERROR)

__version__ = "0.1.0"


def audit(model, images, labels=None, **options):
    """Audit saliency methods on your own classifier: see :func:`bnn_saliency.auditing.audit`
    (imported on first use, so ``import bnn_saliency`` stays light)."""
    from .auditing import audit as run

    return run(model, images, labels, **options)
