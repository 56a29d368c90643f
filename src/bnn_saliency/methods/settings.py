"""The one table of saliency methods: name, function, display label, whether it needs a layer,
and whether it returns pixel maps ``(N, H, W, C)`` or CAMs ``(N, h, w)``.

Every chapter and the tests configure methods through it: ``configure(name, layer=...,
**params)`` binds a method's settings into ``f(model, images, targets) -> maps``, and refuses
a layer method without a layer (or a layer given to a pixel method), so no chapter carries
placeholder settings of its own (cf. Captum's ``tests/attr/helpers/test_config.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from .cams import gradcam, gradcam_plus_plus, guided_gradcam, scorecam
from .gradients import gradient, gradient_x_input, smoothgrad
from .paths import integrated_gradients
from .rules import deeplift_rescale, guided_backprop


@dataclass(frozen=True)
class MethodSetting:
    """One saliency method. ``output`` is ``"pixel"`` or ``"cam"``."""

    name: str
    function: Callable
    label: str
    needs_layer: bool
    output: str


SETTINGS: dict[str, MethodSetting] = {s.name: s for s in [
    MethodSetting("gradient", gradient, "Gradient", False, "pixel"),
    MethodSetting("gradient_x_input", gradient_x_input, "Gradient x Input", False, "pixel"),
    MethodSetting("smoothgrad", smoothgrad, "SmoothGrad", False, "pixel"),
    MethodSetting("integrated_gradients", integrated_gradients, "Integrated Gradients", False,
                  "pixel"),
    MethodSetting("guided_backprop", guided_backprop, "Guided Backprop", False, "pixel"),
    MethodSetting("deeplift_rescale", deeplift_rescale, "DeepLIFT (Rescale)", False, "pixel"),
    MethodSetting("guided_gradcam", guided_gradcam, "Guided Grad-CAM", True, "pixel"),
    MethodSetting("gradcam", gradcam, "Grad-CAM", True, "cam"),
    MethodSetting("gradcam_plus_plus", gradcam_plus_plus, "Grad-CAM++", True, "cam"),
    MethodSetting("scorecam", scorecam, "Score-CAM", True, "cam"),
]}

#: name -> function, every method in the table.
METHODS: dict[str, Callable] = {name: s.function for name, s in SETTINGS.items()}
PIXEL_METHODS = tuple(n for n, s in SETTINGS.items() if s.output == "pixel")
CAM_METHODS = tuple(n for n, s in SETTINGS.items() if s.output == "cam")
LAYER_METHODS = tuple(n for n, s in SETTINGS.items() if s.needs_layer)  # need layer=


def get_method(name: str) -> Callable:
    """The saliency method called ``name`` (see :data:`SETTINGS`)."""
    if not isinstance(name, str) or name not in SETTINGS:
        raise KeyError(f"unknown saliency method {name!r}; available: {', '.join(SETTINGS)}")
    return SETTINGS[name].function


def configure(name: str, layer: str | None = None, **params) -> Callable:
    """``f(model, images, targets) -> maps``: method ``name`` with ``params`` (and, for a layer
    method, ``layer``) bound. Raises if a layer method gets no layer or a pixel method one."""
    fn = get_method(name)
    if SETTINGS[name].needs_layer:
        if layer is None:
            raise ValueError(f"{name} needs layer= (a convolutional feature map of the model)")
        params["layer"] = layer
    elif layer is not None:
        raise ValueError(f"{name} takes no layer (got layer={layer!r})")
    return functools.partial(fn, **params)
