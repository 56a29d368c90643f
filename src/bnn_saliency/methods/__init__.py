"""Saliency methods behind one call shape: ``method(model, images, targets, **params)``.

Every method takes a ``tf.keras`` model that outputs **logits** (one input, one output of
shape ``(N, n_classes)``), float images ``(N, H, W, C)`` in the model's input space and
integer class indices ``targets`` (shape ``(N,)``; a scalar broadcasts), and returns a
float32 ``np.ndarray``:

* pixel methods (:data:`PIXEL_METHODS`) return raw, signed maps shaped like ``images``;
* CAM methods (:data:`CAM_METHODS`) return ``(N, h, w)`` maps at the resolution of the
  named layer (upsampling, abs, channel reduction and normalization live in
  :mod:`bnn_saliency.postprocess`).

The score is always the target logit (never a softmax probability), except inside
Score-CAM where tf-keras-vis applies a softmax by design. Computation runs in the
model's input dtype (float32 for the twins; float64 models stay float64) in inference
mode (``training=False``, so batch normalization uses its moving statistics), batched
internally through one ``tf.function`` per model and method (``batch_size`` rows at a
time). Compiled functions and modified model copies are cached on the model object;
weights changed in place (e.g. by a randomization test) are picked up on the next call.

Every method is listed once in :data:`SETTINGS` (:mod:`bnn_saliency.methods.settings`): its
function, label, whether it needs ``layer=`` and whether it returns pixel maps or CAMs;
``configure(name, layer=..., **params)`` binds a chapter's settings. ``forward(model)`` is the
compiled forward pass the evaluation metrics use, and ``baseline_images`` the one
implementation of the black / blur / mean baselines.

Binary networks: gradients flow through larq's straight-through estimators (STE), e.g.
``SteSign``'s ``dy * (|x| <= clip_value)``, exactly as in training. Methods that override
gradients (guided backprop, DeepLIFT) treat every elementwise nonlinearity alike:
``keras.layers.Activation`` layers (ReLU, larq ``SteSign``, ...), ``activation=...`` inside
Conv/Dense layers, ``keras.layers.ReLU``-family layers, and larq ``input_quantizer``s
(the sign activation of larq-zoo models such as QuickNet).

References:
    Simonyan, Vedaldi & Zisserman 2013, "Deep inside convolutional networks", arXiv:1312.6034.
    Shrikumar et al. 2016, "Not just a black box" (gradient x input), arXiv:1605.01713.
    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.
    Springenberg et al. 2014, "Striving for simplicity: the all convolutional net", arXiv:1412.6806.
    Selvaraju et al. 2019, "Grad-CAM", IJCV (arXiv:1610.02391).
    Chattopadhay et al. 2018, "Grad-CAM++", arXiv:1710.11063.
    Wang et al. 2020, "Score-CAM", arXiv:1910.01279.
    Sundararajan, Taly & Yan 2017, "Axiomatic attribution for deep networks", arXiv:1703.01365.
    Shrikumar, Greenside & Kundaje 2017, "Learning important features through propagating
    activation differences" (DeepLIFT), arXiv:1704.02685.
    Courbariaux et al. 2016 / Hubara et al. 2016 (straight-through estimator for sign),
    arXiv:1602.02830, arXiv:1609.07061.
"""

from __future__ import annotations

from ._core import DEFAULT_BATCH_SIZE, baseline_images, clear_cache, forward, ig_blur_sigma
from .cam_parts import (
    BLANK_TOL,
    CAM_VARIANTS,
    CamParts,
    blank_maps,
    cam_variants,
    gradcam_layers,
    sign_structure,
)
from .cams import gradcam, gradcam_plus_plus, gradcam_weights, guided_gradcam, scorecam
from .gradients import (
    MAGNITUDES,
    draw_noisy_copies,
    gradient,
    gradient_x_input,
    smoothgrad,
    smoothgrad_tfkerasvis,
)
from .paths import IG_RULES, convergence_delta, integrated_gradients, relative_completeness_error
from .rules import DEEPLIFT_MAXPOOL_RULES, RESCALE_EPS, deeplift_rescale, guided_backprop
from .settings import (CAM_METHODS, LAYER_METHODS, METHODS, PIXEL_METHODS, SETTINGS, MethodSetting,
                       configure, get_method)
