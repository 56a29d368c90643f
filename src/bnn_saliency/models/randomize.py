"""Seeded re-initialisation of a model's layers (for the model-randomization sanity checks)."""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from .imagenet import _fresh_layer_names


def randomization_layers_of(model) -> list[str]:
    """Names of the layers a randomization sanity check re-initialises, output to input.

    A layer is included if it has trainable weights or is a ``BatchNormalization`` layer
    (whose moving statistics :func:`randomize_layers` can reset). Excluded: layers without
    weights, and frozen layers with fixed, non-learned weights (QuickNet's blur-pool
    depthwise filters, EfficientNet's input ``Normalization``). Order: reversed topological
    order of ``model.layers`` (logits first). Call it on a freshly built (trainable) model.
    """
    from tensorflow import keras

    return [layer.name for layer in reversed(model.layers)
            if layer.weights and (layer.trainable_weights
                                  or isinstance(layer, keras.layers.BatchNormalization))]


def _weight_key(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _layer_attr(layer, key: str, suffix: str):
    """The layer's ``<weight>_initializer`` / ``<weight>_constraint`` attribute."""
    for attr in (f"{key}_{suffix}", f"{key.replace('_kernel', '')}_{suffix}"):
        if hasattr(layer, attr):
            return getattr(layer, attr)
    return None


def _seeded(initializer, seed: int):
    """A copy of a Keras initializer with ``seed`` (unseeded ones are returned unchanged)."""
    get_config = getattr(initializer, "get_config", None)
    if get_config is None:
        return initializer  # a plain function, e.g. QuickNet's blurpool_initializer
    config = get_config()
    if "seed" in config:
        config = {**config, "seed": seed}
    return type(initializer).from_config(config)


def _weight_seed(seed: int, layer_name: str, key: str) -> int:
    """A per-(seed, layer, weight) seed, so cascading and independent runs draw alike."""
    return int(np.random.SeedSequence([seed, zlib.crc32(f"{layer_name}/{key}".encode())])
               .generate_state(1)[0] % (2**31 - 1))


def randomize_layers(model, layer_names: Sequence[str], seed: int = 0,
                     reset_batchnorm: bool = False):
    """A copy of ``model`` whose named layers are re-initialised from their own initializers.

    The copy is ``keras.models.clone_model`` plus the original weights; ``model`` is not
    changed. For each named layer, every weight is re-drawn from the initializer the layer
    was built with (``kernel_initializer``, ``bias_initializer``, ``depthwise_initializer``,
    ``alpha_initializer``, ...), seeded with a seed derived from (``seed``, layer name,
    weight name): the same layer gets the same draw in cascading and independent
    randomization. If the layer has a constraint for that weight (larq's ``weight_clip`` on
    a ``QuantConv2D`` latent kernel), it is applied to the draw; quantizers act in the
    forward pass as usual, so a binarized layer computes with ``sign`` of the new latent
    kernel.

    ``BatchNormalization`` layers are left unchanged unless ``reset_batchnorm=True``; then
    all four variables are reset from their initializers: gamma = 1, beta = 0, moving mean
    = 0, moving variance = 1 (Keras defaults; larq-zoo uses them too).

    Args:
        model: a Keras model.
        layer_names: layers to re-initialise (e.g. ``spec.randomization_layers[:k]`` for
            cascading, ``[name]`` for independent randomization).
        seed: base seed (default 0).
        reset_batchnorm: also reset BatchNormalization layers (default False).

    Returns:
        The randomized copy.

    Raises:
        KeyError: a layer name is not in the model.
        ValueError: a weight of a named layer has no initializer to draw from.

    References:
        Adebayo et al. 2018, "Sanity Checks for Saliency Maps", arXiv:1810.03292.
    """
    import tensorflow as tf
    from tensorflow import keras

    names_in_model = {layer.name for layer in model.layers}
    missing = [n for n in layer_names if n not in names_in_model]
    if missing:
        raise KeyError(f"layers {missing} are not in model {model.name!r}; use names from "
                       "spec.randomization_layers or randomization_layers_of(model)")
    with _fresh_layer_names():
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for name in layer_names:
        layer = clone.get_layer(name)
        if isinstance(layer, keras.layers.BatchNormalization) and not reset_batchnorm:
            continue
        for variable in layer.weights:
            key = _weight_key(variable)
            initializer = _layer_attr(layer, key, "initializer")
            if initializer is None:
                raise ValueError(f"layer {name!r} ({type(layer).__name__}): weight {key!r} has no "
                                 "initializer to re-draw from; leave this layer out")
            value = _seeded(initializer, _weight_seed(seed, name, key))(
                shape=tuple(variable.shape), dtype=variable.dtype)
            constraint = _layer_attr(layer, key, "constraint")
            if constraint is not None:
                value = constraint(tf.convert_to_tensor(value))
            variable.assign(tf.cast(value, variable.dtype))
    return clone
