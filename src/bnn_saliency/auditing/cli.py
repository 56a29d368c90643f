"""``python -m bnn_saliency audit MODEL [options]`` (also the ``bnn-saliency`` command)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .inputs import PREPROCESS, AuditInputError, load_folder, preprocess, read_labels


def load_model(path):
    """A ``.keras`` / ``.h5`` file or SavedModel directory, loaded with larq's custom objects
    in scope and without compiling."""
    import larq as lq
    from tensorflow import keras

    path = Path(path)
    if not path.exists():
        raise AuditInputError(f"model file {path} does not exist")
    with lq.context.quantized_scope(False), keras.utils.custom_object_scope(
            lq.layers.__dict__ | lq.quantizers.__dict__ | lq.constraints.__dict__):
        try:
            return keras.models.load_model(path, compile=False)
        except (OSError, ValueError) as err:
            raise AuditInputError(f"could not load {path} as a Keras model: {err}") from None


def _images(args, model):
    size = tuple(model.inputs[0].shape[1:3])
    if (args.images is None) == (args.cifar10 is None):
        raise AuditInputError("give either --images DIR or --cifar10 N")
    if args.cifar10 is not None:
        from .. import data

        cifar = data.load_cifar10()
        idx = data.cifar10_subset(cifar, args.cifar10, seed=0)
        if size != (32, 32):
            raise AuditInputError(f"the model takes {size} images; CIFAR-10 images are 32 x 32")
        x255 = cifar.x_test[idx].astype(np.float32)
        labels = cifar.y_test[idx] if args.labels is None else read_labels(args.labels)
        return preprocess(x255, args.preprocess), labels, f"CIFAR-10 test images ({len(idx)})"
    x255, names = load_folder(args.images, size, skip_bad=args.skip_bad)
    labels = None if args.labels is None else read_labels(args.labels, names)
    return (preprocess(x255, args.preprocess), labels,
            (f"{len(names)} images from {args.images}, resized to {size[0]} x {size[1]} "
             "(bilinear)"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bnn-saliency audit", description=(
        "Run the saliency audit on a Keras/larq image classifier and write report.html and "
        "report.json."))
    parser.add_argument("model", help=".keras / .h5 file or SavedModel directory")
    parser.add_argument("--images", help="folder of JPEG/PNG images")
    parser.add_argument("--cifar10", type=int, metavar="N", help="N CIFAR-10 test images")
    parser.add_argument("--labels", help="labels file: one class index per line, or 'file label'")
    parser.add_argument("--layer", help="Grad-CAM layer for the randomization check")
    parser.add_argument("--preprocess", choices=PREPROCESS, default="none",
                        help="how 0-255 images become model inputs (default: scale to [0, 1])")
    parser.add_argument("--out", default="audit-report", help="output folder")
    parser.add_argument("--quick", action="store_true", help="reduced battery")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable image files")
    args = parser.parse_args(argv)
    from . import audit

    try:
        model = load_model(args.model)
        x, labels, source = _images(args, model)
        report = audit(model, x, labels, layer=args.layer, quick=args.quick)
    except AuditInputError as err:
        print(f"bnn-saliency audit: error: {err}", file=sys.stderr)
        return 2
    report.notes.insert(0, f"images: {source}; preprocessing: {args.preprocess}")
    out = Path(args.out)
    report.to_json(out / "report.json")
    report.to_html(out / "report.html")
    print(report.verdicts[["verdict", "check", "value [95% CI]"]].to_string(index=False))
    print(f"report: {out / 'report.html'}")
    return 0
