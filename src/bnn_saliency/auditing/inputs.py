"""What the audit accepts, and the clear errors it gives for anything else.

A model is audited through its logits: one image input ``(N, H, W, C)``, one ``(N, classes)``
output, a gradient path from the output to the input. A model whose last layer applies
softmax is explained by its pre-softmax logits (the report says so). Images come as an array,
a folder of JPEG/PNG files or the CIFAR-10 test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .. import checks

#: Preprocessing a folder's 0-255 RGB images get, as keras.applications names it.
PREPROCESS = ("none", "caffe", "torch", "tf", "minus1to1")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class AuditInputError(ValueError):
    """The model, images, labels or options cannot be audited as given (the message says
    what to do)."""


def logits_model(model):
    """``(logits model, note)``: ``model`` itself if it outputs logits, else the same network
    without its final softmax. Raises :class:`AuditInputError` for anything that is not an
    image classifier with one input and one ``(N, classes)`` output."""
    from tensorflow import keras

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise AuditInputError(
            f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; the "
            "audit explains a classifier with one image input and one logits output: wrap it "
            "as keras.Model(image_input, class_scores)")
    in_shape, out_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(in_shape) != 4:
        raise AuditInputError(f"the model's input has shape {in_shape}; the audit needs images "
                              "(N, H, W, C)")
    if len(out_shape) != 2 or out_shape[1] is None or out_shape[1] < 2:
        raise AuditInputError(f"the model's output has shape {out_shape}, not (N, classes): "
                              "the audit explains classifiers")
    last = model.layers[-1]
    softmax = keras.activations.softmax
    if isinstance(last, keras.layers.Softmax) or (
            isinstance(last, keras.layers.Activation) and last.activation is softmax):
        return (keras.Model(model.inputs, last.input, name=f"{model.name}_logits"),
                (f"the model ends in a {type(last).__name__} layer ({last.name}): its "
                 "input, the logits, is explained"))
    if getattr(last, "activation", None) is softmax:
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        clone.layers[-1].activation = keras.activations.linear
        return (keras.Model(clone.inputs, clone.outputs, name=f"{model.name}_logits"),
                (f"the last layer ({last.name}) applies softmax: the audit explains a copy "
                 "with a linear activation there, i.e. the pre-softmax logits"))
    return model, "the model's output is taken to be logits (no softmax at its end)"


def check_images(images, model) -> np.ndarray:
    """float32 images after checking they fit the model's input."""
    x = checks.images(images)
    want = tuple(model.inputs[0].shape[1:])
    if any(w is not None and w != g for w, g in zip(want, x.shape[1:])):
        raise AuditInputError(f"images have shape {x.shape[1:]}, the model takes {want}: "
                              "resize them (a folder given to the CLI is resized for you)")
    return x.astype(np.float32)


def check_labels(labels, n: int, n_classes: int) -> np.ndarray | None:
    if labels is None:
        return None
    try:
        return checks.targets(np.asarray(labels), n, n_classes)
    except (TypeError, ValueError) as err:
        raise AuditInputError(f"labels: {err}") from None


def conv_layers(model) -> list[str]:
    """Layers with a 4-D output whose spatial size is larger than 1, input to output."""
    names = []
    for layer in model.layers[1:]:
        shape = getattr(layer, "output_shape", None)
        if isinstance(shape, tuple) and len(shape) == 4 and (shape[1] or 0) * (shape[2] or 0) > 1:
            names.append(layer.name)
    return names


def candidate_layers(model, stages: int = 2) -> list[str]:
    """Grad-CAM candidates: the 4-D layers at the ``stages`` smallest spatial sizes (the last
    stages of the network)."""
    layers = conv_layers(model)
    if not layers:
        raise AuditInputError("the model has no convolutional (4-D) layer with spatial size "
                              "> 1: Grad-CAM cannot be audited")
    size = {n: np.prod(model.get_layer(n).output_shape[1:3]) for n in layers}
    keep = sorted(set(size.values()))[:stages]
    return [n for n in layers if size[n] in keep]


def check_layer(model, layer: str | None) -> str | None:
    if layer is None:
        return None
    names = conv_layers(model)
    if layer not in names:
        raise AuditInputError(f"layer {layer!r} is not a 4-D layer of the model; candidates: "
                              + ", ".join(names[-12:]))
    return layer


def check_gradients(model, x: np.ndarray) -> None:
    """Raise if the logits are not finite or have no usable gradient path to the input."""
    import tensorflow as tf

    probe = tf.constant(x[: min(len(x), 8)])
    with tf.GradientTape() as tape:
        tape.watch(probe)
        logits = model(probe, training=False)
        total = tf.reduce_sum(tf.reduce_max(logits, axis=1))
    if not np.all(np.isfinite(logits.numpy())):
        raise AuditInputError("the model's outputs are not finite (NaN or inf) on these "
                              "images: check the preprocessing and the weights")
    grad = tape.gradient(total, probe)
    if grad is None or not np.any(grad.numpy()):
        raise AuditInputError(
            "the logits have no gradient with respect to the input (e.g. an integer-quantized "
            "or TFLite-converted model): saliency needs the float model, with straight-through "
            "estimators for binarized layers (larq)")


def preprocess(images_255: np.ndarray, how: str) -> np.ndarray:
    """0-255 RGB float images in the input space ``how`` names (keras.applications' modes;
    ``"none"``: [0, 1])."""
    if how not in PREPROCESS:
        raise AuditInputError(f"preprocess must be one of {PREPROCESS}, got {how!r}")
    x = np.asarray(images_255, dtype=np.float32)
    if how == "none":
        return x / 255.0
    if how == "minus1to1":
        return x / 127.5 - 1.0
    from tensorflow.keras.applications.imagenet_utils import preprocess_input

    return preprocess_input(x.copy(), mode=how)


def load_folder(folder, size: tuple[int, int], skip_bad: bool = False
                ) -> tuple[np.ndarray, list[str]]:
    """The JPEG/PNG images of ``folder`` as 0-255 float RGB, resized to ``size`` (H, W)
    bilinearly, with their file names. Unreadable files raise, naming them, unless
    ``skip_bad``."""
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise AuditInputError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise AuditInputError(f"no JPEG or PNG files in {folder}")
    arrays, names, bad = [], [], []
    for path in files:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
                arrays.append(np.asarray(im, dtype=np.float32))
                names.append(path.name)
        except OSError:
            bad.append(path.name)
    if bad and not skip_bad:
        raise AuditInputError(f"{len(bad)} unreadable image files in {folder}: "
                              f"{', '.join(bad[:10])}; fix or remove them, or pass --skip-bad")
    if not arrays:
        raise AuditInputError(f"none of the image files in {folder} could be read")
    return np.stack(arrays), names


def read_labels(path, names: Sequence[str] | None = None) -> np.ndarray:
    """Integer labels from a text file: one per line in image order, or ``name label`` pairs
    matched to ``names``."""
    lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    try:
        if lines and len(lines[0]) == 2 and names is not None:
            table = {name: int(label) for name, label in lines}
            missing = [n for n in names if n not in table]
            if missing:
                raise AuditInputError(f"labels file {path} has no label for {missing[:5]}")
            return np.array([table[n] for n in names])
        return np.array([int(ln[-1]) for ln in lines])
    except ValueError:
        raise AuditInputError(f"labels file {path}: every line must end in an integer class "
                              "index") from None
