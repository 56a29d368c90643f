"""Model registry: the paper's ten ImageNet networks and the CIFAR-10 FP/BNN twins.

Every model is addressed by name and described by a :class:`ModelSpec` (how to build it,
its input size, range and preprocessing, the Grad-CAM layer, the layers the
randomization sanity checks walk through). All models output **logits**: saliency
methods differentiate the pre-softmax class score.

ImageNet networks (``kind`` ``"imagenet-fp"`` / ``"imagenet-bnn"``):

================  ==========================================  =======================
name              source                                      Grad-CAM layer
================  ==========================================  =======================
VGG16             ``keras.applications.VGG16``                ``block5_conv3`` 14x14
ResNet50          ``keras.applications.ResNet50``             ``conv5_block3_3_conv``
MobileNet         ``keras.applications.MobileNet``            ``conv_pw_13``
MobileNetV2       ``keras.applications.MobileNetV2``          ``Conv_1``
EfficientNetB0    ``keras.applications.EfficientNetB0``       ``top_conv``
QuickNet          ``larq_zoo.sota.QuickNet``                  ``quant_conv2d_20``
BinaryAlexNet     ``larq_zoo.literature.BinaryAlexNet``       ``quant_conv2d_4`` 13x13
BinaryResNetE18   ``larq_zoo.literature.BinaryResNetE18``     ``quant_conv2d_15``
MeliusNet22       ``larq_zoo.literature.MeliusNet22``         ``section_3_block_3_improve_binconv``
RealToBinaryNet   ``larq_zoo.literature.RealToBinaryNet``     ``r2b_bnn_block_9b_conv2d``
================  ==========================================  =======================

(7x7 unless stated.) The Grad-CAM layer follows tf-keras-vis' default rule (the last
layer that is a Keras ``Conv`` -- which includes larq's ``QuantConv2D``) restricted to
layers with a spatial output larger than 1x1: MobileNet's ``conv_preds`` and
BinaryAlexNet's classifier are 1x1 "convolutions" acting as dense layers and are skipped.
For MeliusNet22 the rule lands on the 64-channel improvement convolution whose output is
merged into the last 512-channel feature map (``head_relu`` would be the alternative).

Logits: ``keras.applications`` are built with ``classifier_activation=None``. The larq-zoo
models end in a softmax layer (``Activation("softmax")`` or, for RealToBinaryNet, a
``Softmax`` layer ``r2b_bnn_block_10_probs``); we build the full model, load weights into
it, and return ``keras.Model(inputs, softmax_layer.input)`` -- the same layers and weights
without the final softmax.

Layer names: larq-zoo leaves most layers auto-named (``quant_conv2d_20``), and Keras
numbers auto-names with a per-session counter. Every build here therefore runs with a
fresh name counter (restored afterwards), so the names are the ones a fresh Python
process produces and the recorded names above are stable.

Preprocessing (``spec.preprocess``) maps float RGB images in [0, 255] to the model input
with the model's own convention: ``keras.applications.<net>.preprocess_input`` (VGG16 and
ResNet50: RGB->BGR and caffe mean subtraction; MobileNet/V2: ``x / 127.5 - 1``;
EfficientNetB0: identity, the model rescales internally) and, for larq-zoo, the per-channel
normalisation of ``larq_zoo.preprocess_input``, ``(x - 255 * (0.485, 0.456, 0.406)) /
(255 * (0.229, 0.224, 0.225))``. ``larq_zoo.preprocess_input`` additionally centre-crops
(224/256 of the short side) and bicubically resizes a single 3-D image; we leave cropping
to :func:`bnn_saliency.data.load_imagenet_sample` so that pixels and saliency maps stay
aligned. Preprocessing never modifies its argument (keras' own functions do, in place).

Pretrained ImageNet weights: ``weights="imagenet"`` fetches the file through
``tf.keras.utils.get_file`` exactly as the library would (same file name, cache folder and
hash), so a cached file is used without network access. If the file is neither cached nor
downloadable, :class:`WeightsUnavailableError` names the file, its URL and the path to
put it at: ``~/.keras/models/<file>`` for ``keras.applications`` and
``~/.keras/larq/models/<model>/<file>`` for larq-zoo (``/tmp/.keras/...`` when ``~/.keras``
is not writable, as in Keras' ``get_file``).

Twins (``kind`` ``"twin"``): names ``<family>-<variant>-s<seed>[-randlabels]`` such as
``vgg-bnn-s1`` or ``vgg-fp-s0-randlabels`` (see :mod:`bnn_saliency.models.twins`). Trained weights
and provenance live in ``data/<name>.weights.h5`` and ``data/<name>.json`` (written by
:mod:`bnn_saliency.models.training`). Twins take float images in [0, 1] of shape (N, 32, 32, 3);
their preprocessing is the identity.

Precision: every build runs under the ``float32`` global Keras policy (twins were trained
with ``mixed_bfloat16``; saliency needs float32 gradients). The caller's policy is restored
afterwards; the built layers keep float32.

References:
    Simonyan & Zisserman 2014 (VGG), arXiv:1409.1556. He et al. 2015 (ResNet),
    arXiv:1512.03385. Howard et al. 2017 (MobileNet), arXiv:1704.04861. Sandler et al. 2018
    (MobileNetV2), arXiv:1801.04381. Tan & Le 2019 (EfficientNet), arXiv:1905.11946.
    Bannink et al. 2021 (QuickNet / Larq Compute Engine), arXiv:2011.09398. Hubara et al.
    2016 (binarized networks, BinaryAlexNet), arXiv:1602.02830. Bethge et al. 2019
    (BinaryResNetE), arXiv:1906.08637. Bethge et al. 2020 (MeliusNet), arXiv:2001.05936.
    Martinez et al. 2020 (Real-to-Binary), arXiv:2003.11535. Selvaraju et al. 2019
    (Grad-CAM), arXiv:1610.02391. Adebayo et al. 2018 (sanity checks), arXiv:1810.03292.
"""

from .imagenet import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    WEIGHTS_FILES,
    WeightsFile,
    WeightsUnavailableError,
    imagenet_available,
    imagenet_status,
    preprocess_identity,
    preprocess_larq_zoo,
)
from .randomize import randomization_layers_of, randomize_layers
from .registry import (
    IMAGENET_NAMES,
    IMAGENET_SPECS,
    KINDS,
    MODELS_ENV,
    MODES,
    TWIN_DEFAULT_WIDTH,
    TWIN_NAME_RE,
    TWIN_WEIGHTS_DIR,
    ModelSpec,
    available_twins,
    build,
    chapter_models,
    get_spec,
    load,
    models_mode,
    names,
    provenance,
    resolve_mode,
)
from .twins import (
    FAMILIES,
    VARIANT_DESCRIPTION,
    VARIANTS,
    TwinSpec,
    build_resnet,
    build_twin,
    build_vgg,
    conv_block_outputs,
    gradcam_layer,
    randomization_order,
)
