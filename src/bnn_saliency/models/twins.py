"""FP/BNN twin architectures for CIFAR-10.

Each family is built in four variants that differ only in what is binarized:

========  ================  ====================
variant   conv/dense kernel  activation
========  ================  ====================
``fp``    real               ReLU
``binw``  sign (STE)         ReLU
``bina``  real               sign (STE)
``bnn``   sign (STE)         sign (STE)
========  ================  ====================

Binarization uses larq: ``QuantConv2D`` with ``kernel_quantizer="ste_sign"`` and
``kernel_constraint="weight_clip"`` (latent weights clipped to [-1, 1]); the sign
activation is a standalone ``Activation(SteSign())`` layer so that both the
pre-binarization tensor (``bn*``) and the binarized one (``act*``) are addressable
by name. The first convolution sees the real-valued image; the classifier (last
dense layer) is always full precision. Outputs are logits.

Layer names are the contract the saliency and randomization code relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import larq as lq
from tensorflow import keras

VARIANTS = ("fp", "binw", "bina", "bnn")


FAMILIES = ("vgg", "resnet")


VARIANT_DESCRIPTION = {
    "fp": "full precision (real weights, ReLU)",
    "binw": "binary weights only (sign kernels, ReLU)",
    "bina": "binary activations only (real kernels, sign activations)",
    "bnn": "binary weights and activations",
}


@dataclass(frozen=True)
class TwinSpec:
    family: str
    variant: str
    width: int

    @property
    def binary_weights(self) -> bool:
        return self.variant in ("binw", "bnn")

    @property
    def binary_activations(self) -> bool:
        return self.variant in ("bina", "bnn")


def _check(family: str, variant: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown twin family {family!r}; choose one of {FAMILIES}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown twin variant {variant!r}; choose one of {VARIANTS}")


def _conv(spec: TwinSpec, filters: int, name: str, kernel_size: int = 3):
    if spec.binary_weights:
        return lq.layers.QuantConv2D(
            filters, kernel_size, padding="same", use_bias=False,
            kernel_quantizer="ste_sign", kernel_constraint="weight_clip", name=name,
        )
    return keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=name)


def _act(spec: TwinSpec, name: str):
    if spec.binary_activations:
        return keras.layers.Activation(lq.quantizers.SteSign(), name=name)
    return keras.layers.Activation("relu", name=name)


def _bn(name: str):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-4, name=name)


def build_vgg(variant: str, width: int = 64) -> keras.Model:
    """VGG/BinaryNet-style twin: 3 stages of two 3x3 convs, each conv -> [pool] -> BN -> act.

    Layers ``conv1..conv6``, ``pool2/4/6``, ``bn1..bn6``, ``act1..act6``, ``logits``.
    """
    _check("vgg", variant)
    spec = TwinSpec("vgg", variant, width)
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    filters = [width, width, 2 * width, 2 * width, 4 * width, 4 * width]
    for i, f in enumerate(filters, start=1):
        x = _conv(spec, f, f"conv{i}")(x)
        if i % 2 == 0:
            x = keras.layers.MaxPool2D(2, name=f"pool{i}")(x)
        x = _bn(f"bn{i}")(x)
        x = _act(spec, f"act{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(10, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"vgg_{variant}")


def build_resnet(variant: str, width: int = 64, blocks_per_stage: int = 2) -> keras.Model:
    """ResNet/Bi-Real-style twin with real-valued shortcuts.

    Block: ``x + BN(conv(act(x)))``. Stages of widths (w, 2w, 4w); stages 2 and 3 start
    by downsampling with average pooling and a full-precision 1x1 conv + BN shortcut
    (as in ResNetE / Bi-Real). Stem: conv + BN. Head: act -> global average pool -> logits.
    """
    _check("resnet", variant)
    spec = TwinSpec("resnet", variant, width)
    inputs = keras.Input((32, 32, 3), name="image")
    x = _conv(spec, width, "stem_conv")(inputs)
    x = _bn("stem_bn")(x)
    for s, f in enumerate([width, 2 * width, 4 * width], start=1):
        for b in range(1, blocks_per_stage + 1):
            p = f"s{s}b{b}"
            shortcut = x
            if s > 1 and b == 1:
                shortcut = keras.layers.AveragePooling2D(2, name=f"{p}_pool")(x)
                shortcut = keras.layers.Conv2D(f, 1, use_bias=False, name=f"{p}_down_conv")(shortcut)
                shortcut = _bn(f"{p}_down_bn")(shortcut)
            y = _act(spec, f"{p}_act")(x)
            strides = 2 if (s > 1 and b == 1) else 1
            conv = _conv(spec, f, f"{p}_conv")
            if strides == 2:
                y = keras.layers.AveragePooling2D(2, name=f"{p}_ypool")(y)
            y = conv(y)
            y = _bn(f"{p}_bn")(y)
            x = keras.layers.Add(name=f"{p}_add")([shortcut, y])
    x = _act(spec, "head_act")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(10, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"resnet_{variant}")


def build_twin(family: str, variant: str, width: int = 64) -> keras.Model:
    """Build a twin by family (``vgg``/``resnet``) and variant (``fp``/``binw``/``bina``/``bnn``)."""
    _check(family, variant)
    return build_vgg(variant, width) if family == "vgg" else build_resnet(variant, width)


def gradcam_layer(family: str) -> str:
    """The layer Grad-CAM uses by default: the last 8x8 feature map."""
    return {"vgg": "conv6", "resnet": "s3b2_add"}[family]


def randomization_order(model: keras.Model) -> list[str]:
    """Names of the layers with weights, from the logits down to the first layer."""
    return [layer.name for layer in reversed(model.layers) if layer.weights]


def conv_block_outputs(model: keras.Model, family: str) -> list[str]:
    """The per-block feature maps, shallow to deep (for Grad-CAM vs depth)."""
    if family == "vgg":
        return [f"conv{i}" for i in range(1, 7)]
    return [lay.name for lay in model.layers if lay.name.endswith("_add")]
