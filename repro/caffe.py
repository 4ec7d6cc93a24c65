"""Read Caffe networks: ``deploy.prototxt``, ``.caffemodel`` and ``.binaryproto`` files.

Caffe stores networks as Protocol Buffers messages defined in BVLC's ``caffe.proto``:
the architecture as text (``deploy.prototxt``), the trained weights as binary
(``.caffemodel``), the ImageNet mean image as one binary ``BlobProto``
(``.binaryproto``). This module declares the subset of ``caffe.proto`` these files
need (message and field names, numbers and defaults as in ``caffe.proto``) and lets
the ``protobuf`` library do the decoding. Both layouts Caffe has used are read:

* legacy V1: ``NetParameter.layers`` (field 2), enum layer types, blob sizes
  as ``num/channels/height/width`` (2014-era files such as the original AlexNet);
* V2: ``NetParameter.layer`` (field 100), string layer types, ``BlobShape``.

Weights are converted once into an HDF5 file in :func:`repro.paths.weights_dir`,
named after the caffemodel's SHA-1, so later runs read plain arrays in milliseconds.

Example
-------
>>> model = load("bvlc_alexnet/deploy.prototxt", "bvlc_alexnet.caffemodel")  # doctest: +SKIP
>>> model.blobs["conv1"][0].shape  # (out, in / group, kh, kw)                   # doctest: +SKIP
(96, 3, 11, 11)
"""
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import DecodeError

from .paths import atomic_path, file_digest, weights_dir

__all__ = ["CaffeError", "Layer", "CaffeModel", "V1_LAYER_TYPES", "PARAM_FIELDS", "LEARNED_TYPES", "load",
           "parse_prototxt", "check_layer", "param_pair", "network_digest", "rewrite_prototxt", "read_caffemodel", "read_mean", "sha1sum", "cache_path"]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# The caffe.proto subset: message -> [(field name, number, type, label, default)].
# Types are protobuf scalar names or message/enum names of this table.
# --------------------------------------------------------------------------------------
_OPT, _REP = "optional", "repeated"

_ENUMS = {
    "PoolMethod": ["MAX", "AVE", "STOCHASTIC"],
    "RoundMode": ["CEIL", "FLOOR"],
    "NormRegion": ["ACROSS_CHANNELS", "WITHIN_CHANNEL"],
    "Engine": ["DEFAULT", "CAFFE", "CUDNN"],
    "Phase": ["TRAIN", "TEST"],
    "DimCheckMode": ["STRICT", "PERMISSIVE"],
    "VarianceNorm": ["FAN_IN", "FAN_OUT", "AVERAGE"],
}

#: V1 layer types (``V1LayerParameter.LayerType``): number -> (enum name, V2 type string).
V1_LAYER_TYPES = {
    0: ("NONE", "None"), 35: ("ABSVAL", "AbsVal"), 1: ("ACCURACY", "Accuracy"),
    30: ("ARGMAX", "ArgMax"), 2: ("BNLL", "BNLL"), 3: ("CONCAT", "Concat"),
    37: ("CONTRASTIVE_LOSS", "ContrastiveLoss"), 4: ("CONVOLUTION", "Convolution"),
    5: ("DATA", "Data"), 39: ("DECONVOLUTION", "Deconvolution"), 6: ("DROPOUT", "Dropout"),
    32: ("DUMMY_DATA", "DummyData"), 7: ("EUCLIDEAN_LOSS", "EuclideanLoss"),
    25: ("ELTWISE", "Eltwise"), 38: ("EXP", "Exp"), 8: ("FLATTEN", "Flatten"),
    9: ("HDF5_DATA", "HDF5Data"), 10: ("HDF5_OUTPUT", "HDF5Output"),
    28: ("HINGE_LOSS", "HingeLoss"), 11: ("IM2COL", "Im2col"), 12: ("IMAGE_DATA", "ImageData"),
    13: ("INFOGAIN_LOSS", "InfogainLoss"), 14: ("INNER_PRODUCT", "InnerProduct"),
    15: ("LRN", "LRN"), 29: ("MEMORY_DATA", "MemoryData"),
    16: ("MULTINOMIAL_LOGISTIC_LOSS", "MultinomialLogisticLoss"), 34: ("MVN", "MVN"),
    17: ("POOLING", "Pooling"), 26: ("POWER", "Power"), 18: ("RELU", "ReLU"),
    19: ("SIGMOID", "Sigmoid"), 27: ("SIGMOID_CROSS_ENTROPY_LOSS", "SigmoidCrossEntropyLoss"),
    36: ("SILENCE", "Silence"), 20: ("SOFTMAX", "Softmax"), 21: ("SOFTMAX_LOSS", "SoftmaxWithLoss"),
    22: ("SPLIT", "Split"), 33: ("SLICE", "Slice"), 23: ("TANH", "TanH"),
    24: ("WINDOW_DATA", "WindowData"), 31: ("THRESHOLD", "Threshold"),
}
_ENUMS["LayerType"] = [name for _, (name, _) in sorted(V1_LAYER_TYPES.items())]
_ENUM_NUMBERS = {"LayerType": sorted(V1_LAYER_TYPES)}  # other enums count 0, 1, 2, ...

_FILLER = ("FillerParameter", _OPT)
_MESSAGES = {
    "BlobShape": [("dim", 1, "int64", _REP, None)],
    "BlobProto": [
        ("shape", 7, "BlobShape", _OPT, None), ("data", 5, "float", _REP, None),
        ("diff", 6, "float", _REP, None), ("double_data", 8, "double", _REP, None),
        ("double_diff", 9, "double", _REP, None), ("num", 1, "int32", _OPT, "0"),
        ("channels", 2, "int32", _OPT, "0"), ("height", 3, "int32", _OPT, "0"),
        ("width", 4, "int32", _OPT, "0")],
    "FillerParameter": [
        ("type", 1, "string", _OPT, "constant"), ("value", 2, "float", _OPT, "0"),
        ("min", 3, "float", _OPT, "0"), ("max", 4, "float", _OPT, "1"),
        ("mean", 5, "float", _OPT, "0"), ("std", 6, "float", _OPT, "1"),
        ("sparse", 7, "int32", _OPT, "-1"), ("variance_norm", 8, "VarianceNorm", _OPT, "FAN_IN")],
    "ParamSpec": [
        ("name", 1, "string", _OPT, None), ("share_mode", 2, "int32", _OPT, None),
        ("lr_mult", 3, "float", _OPT, "1"), ("decay_mult", 4, "float", _OPT, "1")],
    "NetStateRule": [
        ("phase", 1, "Phase", _OPT, None), ("min_level", 2, "int32", _OPT, None),
        ("max_level", 3, "int32", _OPT, None), ("stage", 4, "string", _REP, None),
        ("not_stage", 5, "string", _REP, None)],
    "InputParameter": [("shape", 1, "BlobShape", _REP, None)],
    "ConvolutionParameter": [
        ("num_output", 1, "uint32", _OPT, None), ("bias_term", 2, "bool", _OPT, "true"),
        ("pad", 3, "uint32", _REP, None), ("kernel_size", 4, "uint32", _REP, None),
        ("stride", 6, "uint32", _REP, None), ("dilation", 18, "uint32", _REP, None),
        ("pad_h", 9, "uint32", _OPT, "0"), ("pad_w", 10, "uint32", _OPT, "0"),
        ("kernel_h", 11, "uint32", _OPT, None), ("kernel_w", 12, "uint32", _OPT, None),
        ("stride_h", 13, "uint32", _OPT, None), ("stride_w", 14, "uint32", _OPT, None),
        ("group", 5, "uint32", _OPT, "1"), ("weight_filler", 7) + _FILLER + (None,),
        ("bias_filler", 8) + _FILLER + (None,), ("engine", 15, "Engine", _OPT, "DEFAULT"),
        ("axis", 16, "int32", _OPT, "1"), ("force_nd_im2col", 17, "bool", _OPT, "false")],
    "PoolingParameter": [
        ("pool", 1, "PoolMethod", _OPT, "MAX"), ("pad", 4, "uint32", _OPT, "0"),
        ("pad_h", 9, "uint32", _OPT, "0"), ("pad_w", 10, "uint32", _OPT, "0"),
        ("kernel_size", 2, "uint32", _OPT, None), ("kernel_h", 5, "uint32", _OPT, None),
        ("kernel_w", 6, "uint32", _OPT, None), ("stride", 3, "uint32", _OPT, "1"),
        ("stride_h", 7, "uint32", _OPT, None), ("stride_w", 8, "uint32", _OPT, None),
        ("engine", 11, "Engine", _OPT, "DEFAULT"), ("global_pooling", 12, "bool", _OPT, "false"),
        ("round_mode", 13, "RoundMode", _OPT, "CEIL")],
    "LRNParameter": [
        ("local_size", 1, "uint32", _OPT, "5"), ("alpha", 2, "float", _OPT, "1"),
        ("beta", 3, "float", _OPT, "0.75"), ("norm_region", 4, "NormRegion", _OPT, "ACROSS_CHANNELS"),
        ("k", 5, "float", _OPT, "1"), ("engine", 6, "Engine", _OPT, "DEFAULT")],
    "InnerProductParameter": [
        ("num_output", 1, "uint32", _OPT, None), ("bias_term", 2, "bool", _OPT, "true"),
        ("weight_filler", 3) + _FILLER + (None,), ("bias_filler", 4) + _FILLER + (None,),
        ("axis", 5, "int32", _OPT, "1"), ("transpose", 6, "bool", _OPT, "false")],
    "DropoutParameter": [("dropout_ratio", 1, "float", _OPT, "0.5")],
    "ConcatParameter": [("axis", 2, "int32", _OPT, "1"), ("concat_dim", 1, "uint32", _OPT, "1")],
    "SoftmaxParameter": [("engine", 1, "Engine", _OPT, "DEFAULT"), ("axis", 2, "int32", _OPT, "1")],
    "ReLUParameter": [("negative_slope", 1, "float", _OPT, "0"), ("engine", 2, "Engine", _OPT, "DEFAULT")],
}
#: Layer type -> its parameters in ``LayerParameter``: (field name, V2 number, V1 number or None, message).
_LAYER_PARAMS = {
    "Convolution": ("convolution_param", 106, 10, "ConvolutionParameter"),
    "Pooling": ("pooling_param", 121, 19, "PoolingParameter"),
    "LRN": ("lrn_param", 118, 18, "LRNParameter"),
    "InnerProduct": ("inner_product_param", 117, 17, "InnerProductParameter"),
    "Dropout": ("dropout_param", 108, 12, "DropoutParameter"),
    "Concat": ("concat_param", 104, 9, "ConcatParameter"),
    "Softmax": ("softmax_param", 125, 39, "SoftmaxParameter"),
    "ReLU": ("relu_param", 123, 30, "ReLUParameter"),
    "Input": ("input_param", 143, None, "InputParameter"),
}
#: Layer type -> the prototxt field of its parameters (``"Convolution"`` -> ``"convolution_param"``).
PARAM_FIELDS = {kind: entry[0] for kind, entry in _LAYER_PARAMS.items()}
#: Layer types whose weights a caffemodel must hold; :func:`load` checks their blobs (Caffe's blob layout).
LEARNED_TYPES = ("Convolution", "InnerProduct")
_MESSAGES["LayerParameter"] = [
    ("name", 1, "string", _OPT, None), ("type", 2, "string", _OPT, None),
    ("bottom", 3, "string", _REP, None), ("top", 4, "string", _REP, None),
    ("phase", 10, "Phase", _OPT, None), ("loss_weight", 5, "float", _REP, None),
    ("param", 6, "ParamSpec", _REP, None), ("blobs", 7, "BlobProto", _REP, None),
    ("propagate_down", 11, "bool", _REP, None), ("include", 8, "NetStateRule", _REP, None),
    ("exclude", 9, "NetStateRule", _REP, None),
] + [(name, v2, msg, _OPT, None) for name, v2, _, msg in _LAYER_PARAMS.values()]
_MESSAGES["V1LayerParameter"] = [
    ("bottom", 2, "string", _REP, None), ("top", 3, "string", _REP, None),
    ("name", 4, "string", _OPT, None), ("include", 32, "NetStateRule", _REP, None),
    ("exclude", 33, "NetStateRule", _REP, None), ("type", 5, "LayerType", _OPT, None),
    ("blobs", 6, "BlobProto", _REP, None), ("param", 1001, "string", _REP, None),
    ("blobs_lr", 7, "float", _REP, None), ("weight_decay", 8, "float", _REP, None),
    ("loss_weight", 35, "float", _REP, None),
] + [(name, v1, msg, _OPT, None) for name, _, v1, msg in _LAYER_PARAMS.values() if v1]
_MESSAGES["NetParameter"] = [
    ("name", 1, "string", _OPT, None), ("input", 3, "string", _REP, None),
    ("input_shape", 8, "BlobShape", _REP, None), ("input_dim", 4, "int32", _REP, None),
    ("force_backward", 5, "bool", _OPT, "false"), ("debug_info", 7, "bool", _OPT, "false"),
    ("layer", 100, "LayerParameter", _REP, None), ("layers", 2, "V1LayerParameter", _REP, None),
]

_SCALARS = {"double": 1, "float": 2, "int64": 3, "uint64": 4, "int32": 5, "bool": 8,
            "string": 9, "uint32": 13}


def _message_classes():
    """Build the protobuf classes of the subset above; returns ``{name: class}``."""
    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="repro_caffe_subset.proto", package="caffe",
                                               syntax="proto2")
    for enum_name, values in _ENUMS.items():
        enum = proto.enum_type.add(name=enum_name)
        numbers = _ENUM_NUMBERS.get(enum_name, range(len(values)))
        for number, value in zip(numbers, values):  # top-level enum values share the package
            enum.value.add(name=value, number=number)  # scope: the names above are all distinct
    for msg_name, fields in _MESSAGES.items():
        msg = proto.message_type.add(name=msg_name)
        for name, number, ftype, label, default in fields:
            f = msg.field.add(name=name, number=number,
                              label=F.LABEL_REPEATED if label == _REP else F.LABEL_OPTIONAL)
            if ftype in _SCALARS:
                f.type = _SCALARS[ftype]
            elif ftype in _ENUMS:
                f.type, f.type_name = F.TYPE_ENUM, f".caffe.{ftype}"
            else:
                f.type, f.type_name = F.TYPE_MESSAGE, f".caffe.{ftype}"
            if default is not None:
                f.default_value = default
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}"))
            for name in _MESSAGES}


_PROTO = _message_classes()


# --------------------------------------------------------------------------------------
# Parsed, protobuf-free description of a network
# --------------------------------------------------------------------------------------
class CaffeError(ValueError):
    """A Caffe file that cannot be used; the message names the file and the layer."""


@dataclass
class Layer:
    """One layer of a prototxt.

    Attributes
    ----------
    name, type : str
        As in the prototxt; V1 enum types are given their V2 names (``CONVOLUTION`` -> ``"Convolution"``).
    bottoms, tops : list of str
        Input and output blob names (in-place layers such as ReLU have ``tops == bottoms``).
    params : dict
        The layer's type-specific parameters with Caffe's defaults filled in, e.g.
        ``{"num_output": 96, "kernel_size": [11], "stride": [4], "group": 1, ...}`` for a
        convolution; enums as their names (``"MAX"``); ``{}`` for layers without any.
    """
    name: str
    type: str
    bottoms: list
    tops: list
    params: dict = field(default_factory=dict)


@dataclass
class CaffeModel:
    """A prototxt's layers and a caffemodel's weights (see :func:`load`).

    Attributes
    ----------
    name : str
        The network's name from the prototxt.
    layers : list of Layer
        In prototxt order; old-style ``input:``/``input_dim:`` headers become an ``Input`` layer.
    blobs : dict
        ``layer name -> [weights, bias]`` float32 arrays; convolution weights are
        ``(out, in / group, kh, kw)``, inner-product weights ``(out, in)``.
    prototxt, caffemodel : Path
    sha1 : str
        SHA-1 of the caffemodel file (the key of the HDF5 cache).
    """
    name: str
    layers: list
    blobs: dict
    prototxt: Path
    caffemodel: Path
    sha1: str

    def layer(self, name):
        """Return the :class:`Layer` called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r} in {self.prototxt}")


def _params_dict(message):
    """Protobuf message -> plain dict of every field (defaults filled in, enums as names)."""
    out = {}
    for fd in message.DESCRIPTOR.fields:
        value = getattr(message, fd.name)
        if fd.is_repeated:
            value = [_params_dict(v) if fd.message_type else v for v in value]
        elif fd.message_type:
            value = _params_dict(value)
        elif fd.enum_type:
            value = fd.enum_type.values_by_number[value].name
        out[fd.name] = value
    return out


def _layer_from_proto(proto, v1):
    """``LayerParameter`` or ``V1LayerParameter`` -> :class:`Layer` (parameters of its type, defaults filled)."""
    layer_type = V1_LAYER_TYPES.get(proto.type, (0, f"V1 type {proto.type}"))[1] if v1 else proto.type
    field_name = PARAM_FIELDS.get(layer_type)
    has_field = field_name is not None and field_name in proto.DESCRIPTOR.fields_by_name
    params = _params_dict(getattr(proto, field_name)) if has_field else {}
    return Layer(proto.name, layer_type, list(proto.bottom), list(proto.top), params)


def _net_layers(net):
    """``NetParameter`` -> (layer messages, whether they are V1)."""
    if len(net.layer) and len(net.layers):
        raise CaffeError("both V1 'layers' and V2 'layer' entries present")
    if len(net.layers):
        return list(net.layers), True
    return list(net.layer), False


def _read_net(prototxt):
    """The ``NetParameter`` of a prototxt file; CaffeError naming the file for text that is not one."""
    net = _PROTO["NetParameter"]()
    try:
        text_format.Parse(Path(prototxt).read_text(), net, allow_unknown_field=True)
    except (text_format.ParseError, UnicodeDecodeError) as err:
        raise CaffeError(f"{prototxt}: not a Caffe prototxt ({err})") from err
    except RecursionError:
        raise CaffeError(f"{prototxt}: not a Caffe prototxt (braces nested too deeply to read; Caffe's own "
                         f"networks nest four levels)") from None
    return net


def parse_prototxt(prototxt):
    """Read a ``deploy.prototxt`` (V1 or V2 text layout), every layer's parameters checked as Caffe checks them.

    Parameters
    ----------
    prototxt : str or Path

    Returns
    -------
    name : str
    layers : list of Layer
        Old-style headers (``input: "data"`` with ``input_dim``/``input_shape``) become a
        first layer of type ``Input`` with ``params = {"shape": [{"dim": [...]}]}``.

    Raises
    ------
    CaffeError
        Text that is not a prototxt, or a parameter Caffe would refuse (:func:`check_layer`), naming the file,
        the line of the layer, the field and its value, before any array is made.
    """
    prototxt = Path(prototxt)
    net = _read_net(prototxt)
    protos, v1 = _net_layers(net)
    layers = [_layer_from_proto(p, v1) for p in protos]
    for i, name in enumerate(net.input):
        if len(net.input_shape) > i:
            dims = list(net.input_shape[i].dim)
        else:
            dims = list(net.input_dim[4 * i: 4 * i + 4])
        layers.insert(i, Layer(name, "Input", [], [name], {"shape": [{"dim": dims}]}))
    if not layers:
        raise CaffeError(f"{prototxt}: no layers")
    text = prototxt.read_text()
    for layer in layers:
        problem = check_layer(layer)
        if problem:
            raise CaffeError(f"{prototxt}{_line_of(text, layer.name)}, layer {layer.name!r} ({layer.type}): "
                             f"{problem}")
    return net.name, layers


def network_digest(layers):
    """SHA-1 of what a network computes: every layer's name, type, inputs, outputs and parameters (defaults
    filled in), as :func:`parse_prototxt` reads them.

    The same for the V1 and V2 layouts of one network, and blind to comments, spacing and the per-blob
    learning rates (``param``, ``blobs_lr``); any change to a layer's parameters (weight fillers included,
    although they do not change what a trained network computes) changes it.
    """
    canonical = [[layer.name, layer.type, layer.bottoms, layer.tops, layer.params] for layer in layers]
    return hashlib.sha1(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _line_of(text, name):
    """``", line N"`` of the first ``name: "<name>"`` in a prototxt's text, or ``""``."""
    found = re.search(rf'\bname\s*:\s*["\']{re.escape(name)}["\']', text)
    return f", line {text.count(chr(10), 0, found.start()) + 1}" if found else ""


# --------------------------------------------------------------------------------------
# Parameters checked as Caffe checks them (its LayerSetUp): one function per layer type
# --------------------------------------------------------------------------------------
def param_pair(params, name, default):
    """Caffe's ``name`` (repeated or scalar) overridden by ``name_h`` / ``name_w``: returns (h, w)."""
    base = {"kernel_size": "kernel", "pad": "pad", "stride": "stride"}.get(name, name)
    value = params.get(name)
    values = list(value) if isinstance(value, list) else ([value] if value else [])
    h = values[0] if values else default
    w = values[-1] if values else default
    h = params.get(f"{base}_h") or h
    w = params.get(f"{base}_w") or w
    return h, w


def _window_problem(p, repeated):
    """What Caffe refuses in the kernel, stride and pad of a convolution (``repeated``) or pooling window."""
    for base, name in (("kernel", "kernel_size"), ("stride", "stride"), ("pad", "pad")):
        default = 1 if name == "stride" else 0          # pooling's scalar fields hold their default when unset
        given = len(p[name]) if repeated else int(p[name] != default)
        h, w = p.get(f"{base}_h"), p.get(f"{base}_w")
        if given > 2:
            return f"{name} has {given} values {p[name]}; 2-D layers take 1 or 2 (3-D convolution is not supported)"
        if bool(h) != bool(w) and base != "pad":
            return f"{base}_h = {h}, {base}_w = {w}: give both or neither (or {name})"
        if given and (h or w):
            return f"{name} and {base}_h/{base}_w both given: give one or the other"
    kernel, stride = param_pair(p, "kernel_size", 0), param_pair(p, "stride", 1)
    if min(kernel) <= 0:
        return f"kernel size {kernel} (from kernel_size/kernel_h/kernel_w): must be > 0 on both axes"
    if min(stride) <= 0:
        return f"stride {stride}: must be > 0 on both axes"
    return None


def _convolution_problem(p):
    problem = _window_problem(p, repeated=True)
    if problem:
        return problem
    if not p["num_output"]:
        return "num_output = 0: must be > 0"
    if not p["group"]:
        return "group = 0: must be >= 1 (and divide num_output and the input channels)"
    if p["num_output"] % p["group"]:
        return f"num_output = {p['num_output']} is not a multiple of group = {p['group']}"
    if len(p["dilation"]) > 2 or 0 in p["dilation"]:
        return f"dilation {p['dilation']}: 1 or 2 values, each > 0"
    if p["axis"] != 1:
        return f"axis = {p['axis']}: only convolution over channels (axis 1) is supported"
    return None


def _pooling_problem(p):
    if p["pool"] not in ("MAX", "AVE"):
        return f"pool = {p['pool']}: only MAX and AVE are supported"
    if p["global_pooling"]:
        if p["kernel_size"] or p["kernel_h"] or p["kernel_w"]:
            return "global_pooling with a kernel size: give one or the other"
        if param_pair(p, "pad", 0) != (0, 0) or param_pair(p, "stride", 1) != (1, 1):
            return "global_pooling takes only pad 0 and stride 1"
        return None
    if p["stride"] == 0 and not (p["stride_h"] or p["stride_w"]):       # its default is 1: 0 is written
        return "stride (0, 0): must be > 0 on both axes"
    problem = _window_problem(p, repeated=False)
    if problem:
        return problem
    kernel, pad = param_pair(p, "kernel_size", 0), param_pair(p, "pad", 0)
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        return f"pad {pad} must be smaller than the kernel {kernel}"
    return None


def _lrn_problem(p):
    if p["local_size"] % 2 == 0:
        return f"local_size = {p['local_size']}: must be odd (Caffe's LRN takes 1, 3, 5, ...)"
    if p["norm_region"] != "ACROSS_CHANNELS":
        return f"norm_region = {p['norm_region']}: only ACROSS_CHANNELS is supported"
    return None


def _axis_problem(p):
    return None if p["axis"] == 1 else f"axis = {p['axis']}: only axis 1 (channels) is supported"


def _inner_product_problem(p):
    return "num_output = 0: must be > 0" if not p["num_output"] else _axis_problem(p)


def _input_problem(p):
    for shape in p["shape"]:
        if any(d <= 0 for d in shape["dim"]):
            return f"input shape {shape['dim']}: every dimension must be > 0"
    return None


def _dropout_problem(p):
    ratio = p["dropout_ratio"]
    return None if 0 <= ratio < 1 else f"dropout_ratio = {ratio}: must be in [0, 1)"


_PROBLEMS = {"Convolution": _convolution_problem, "Pooling": _pooling_problem, "LRN": _lrn_problem,
             "InnerProduct": _inner_product_problem, "Concat": _axis_problem, "Softmax": _axis_problem,
             "Input": _input_problem, "Dropout": _dropout_problem}


def _non_finite(params, prefix=""):
    """The first float parameter (nested too) that is nan or inf, as ``"name = value"``, or None."""
    for name, value in params.items():
        for item in (value if isinstance(value, list) else [value]):
            if isinstance(item, dict):
                found = _non_finite(item, f"{prefix}{name}.")
                if found:
                    return found
            elif isinstance(item, float) and not math.isfinite(item):
                return f"{prefix}{name} = {item}"
    return None


def check_layer(layer):
    """What Caffe would refuse in a :class:`Layer`'s parameters (or this package does not support), or None.

    Checks what Caffe's ``LayerSetUp`` checks: kernels and strides > 0, ``num_output > 0`` and a multiple of
    ``group >= 1``, pooling pad < kernel, LRN ``local_size`` odd, kernel/stride/pad given one way only,
    input dimensions > 0; and every float parameter finite. Input channels divisible by ``group`` depend on
    the layers before; :class:`repro.network.Network` checks those.
    """
    non_finite = _non_finite(layer.params)
    if non_finite:
        return f"{non_finite}: must be a finite number"
    check = _PROBLEMS.get(layer.type)
    return check(layer.params) if check else None


def rewrite_prototxt(prototxt, last_layer=None, full_padding=False):
    """Return the text of a prototxt, cut after a layer and/or with 'full' convolution padding.

    Hands other Caffe readers (e.g. OpenCV) the network :class:`repro.network.Network`
    builds: AlexNet's trunk up to ``pool5`` when the caffemodel holds no fc weights, and
    the paper's ``padding='full'`` as explicit pads of ``dilation * (kernel - 1)``.

    Parameters
    ----------
    prototxt : str or Path
    last_layer : str, optional
        Drop every layer after this one.
    full_padding : bool
        Set every convolution's padding to ``dilation * (kernel - 1)`` on both axes.

    Returns
    -------
    str
    """
    parse_prototxt(prototxt)                            # checked as a whole first
    net = _read_net(prototxt)
    entries = net.layers if len(net.layers) else net.layer
    if last_layer is not None:
        names = [entry.name for entry in entries]
        if last_layer not in names:
            raise CaffeError(f"{prototxt}: no layer {last_layer!r}")
        del entries[names.index(last_layer) + 1:]
    for entry in entries if full_padding else []:
        if entry.HasField("convolution_param"):
            conv = entry.convolution_param
            kernel = (conv.kernel_h or conv.kernel_size[0], conv.kernel_w or conv.kernel_size[-1])
            dilation = (conv.dilation[0], conv.dilation[-1]) if len(conv.dilation) else (1, 1)
            del conv.pad[:]
            conv.pad_h, conv.pad_w = (d * (k - 1) for d, k in zip(dilation, kernel))
    return text_format.MessageToString(net)


# --------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------
def _blob_array(blob, where):
    """``BlobProto`` -> float32 array of its shape (V2 ``shape`` or V1 num/channels/height/width)."""
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        shape = tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width))
    values = blob.data if len(blob.data) else blob.double_data
    size = int(np.prod(shape)) if shape else 0
    if len(values) != size:
        raise CaffeError(f"{where}: {len(values)} values for a blob of shape {shape}")
    return np.array(values, dtype=np.float32).reshape(shape)


def _squeeze_v1(array, layer_type):
    """V1 blobs are always 4-D: (1, 1, out, in) for weights of inner products, (1, 1, 1, n) for biases."""
    if array.ndim == 4 and array.shape[:2] == (1, 1) and layer_type != "Convolution":
        array = array.reshape(array.shape[2:])
    if array.ndim == 4 and array.shape[:3] == (1, 1, 1):
        array = array.reshape(array.shape[3])
    return array


def read_caffemodel(caffemodel, progress=True):
    """Decode a binary ``.caffemodel`` (V1 or V2 layout) into arrays.

    Parameters
    ----------
    caffemodel : str or Path
    progress : bool
        Show a progress bar while converting blobs.

    Returns
    -------
    dict
        ``layer name -> list of float32 arrays`` for every layer that has blobs; biases are
        1-D ``(out,)``, convolution weights ``(out, in / group, kh, kw)``, inner products ``(out, in)``.
    """
    from tqdm import tqdm

    caffemodel = Path(caffemodel)
    net = _PROTO["NetParameter"]()
    try:
        net.ParseFromString(caffemodel.read_bytes())
    except DecodeError as err:
        raise CaffeError(f"{caffemodel}: truncated or corrupt caffemodel ({err})") from err
    protos, v1 = _net_layers(net)
    with_blobs = [p for p in protos if len(p.blobs)]
    if not with_blobs:
        raise CaffeError(f"{caffemodel}: no layer with weights (is this a caffemodel?)")
    blobs = {}
    for proto in tqdm(with_blobs, desc=f"reading {caffemodel.name}", disable=not progress, leave=False):
        layer_type = V1_LAYER_TYPES.get(proto.type, (0, None))[1] if v1 else proto.type
        arrays = [_blob_array(b, f"{caffemodel}, layer {proto.name!r}, blob {i}")
                  for i, b in enumerate(proto.blobs)]
        blobs[proto.name] = [_squeeze_v1(a, layer_type) if v1 else a for a in arrays]
    return blobs


def read_mean(binaryproto):
    """Read Caffe's mean image (a ``BlobProto``, e.g. ``imagenet_mean.binaryproto``).

    Returns
    -------
    ndarray, shape (3, height, width), float32
        In Caffe's channel order, BGR, 0–255.
    """
    binaryproto = Path(binaryproto)
    blob = _PROTO["BlobProto"]()
    try:
        blob.ParseFromString(binaryproto.read_bytes())
        mean = _blob_array(blob, str(binaryproto))
    except DecodeError as err:
        raise CaffeError(f"{binaryproto}: truncated or corrupt binaryproto ({err})") from err
    if mean.ndim == 4 and mean.shape[0] == 1:
        mean = mean[0]
    if mean.ndim != 3 or mean.shape[0] != 3:
        raise CaffeError(f"{binaryproto}: expected a 3-channel mean image, got shape {mean.shape}")
    return mean


def sha1sum(path):
    """Hex SHA-1 of a file (what names a caffemodel's converted cache)."""
    return file_digest(path, "sha1")


_CACHE_VERSION = 2          # 2: records the caffemodel's SHA-1


def cache_path(sha1):
    """The HDF5 cache file of the caffemodel with this SHA-1."""
    return weights_dir() / f"caffe-{sha1}.h5"


def _write_cache(path, blobs, prototxt_text, source, sha1):
    """Write blobs to ``path`` atomically (a temporary file beside it, renamed when complete), with the SHA-1 of the
    caffemodel they come from."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs.update(version=_CACHE_VERSION, prototxt=prototxt_text, source=str(source), sha1=sha1)
        # layer names may contain '/', which HDF5 reads as groups: index them instead
        for i, (name, arrays) in enumerate(blobs.items()):
            group = h5.create_group(f"layers/{i:04d}")
            group.attrs["name"] = name
            for j, array in enumerate(arrays):
                group.create_dataset(str(j), data=array)


def _read_cache(path, sha1=None):
    """The blobs of a cache file, or None if it is of another version, damaged or (``sha1`` given) converted from
    another caffemodel than its name says (then it is rebuilt, with a warning naming it)."""
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("version") != _CACHE_VERSION:
                return None
            if sha1 is not None and h5.attrs.get("sha1") != sha1:
                log.warning("%s: holds the weights of another caffemodel (sha1 %s) than its name says; converting "
                            "the caffemodel again", path, h5.attrs.get("sha1"))
                return None
            groups = h5["layers"]
            return {groups[key].attrs["name"]: [groups[key][str(j)][()] for j in range(len(groups[key]))]
                    for key in sorted(groups)}
    except (OSError, KeyError) as err:
        log.warning("%s: damaged converted-weights cache (%s); converting the caffemodel again", path, err)
        return None


def _check_blobs(layers, blobs, caffemodel):
    """Every Convolution/InnerProduct layer must have finite weights of its declared output size."""
    for layer in layers:
        where = f"{caffemodel}, layer {layer.name!r}"
        for j, array in enumerate(blobs.get(layer.name, [])):
            finite = np.isfinite(array)
            if not finite.all():
                raise CaffeError(f"{where}, blob {j} {array.shape}: {array.size - finite.sum()} value(s) are nan "
                                 f"or inf, e.g. at {np.unravel_index(np.argmin(finite), array.shape)}")
        if layer.type not in LEARNED_TYPES:
            continue
        if layer.name not in blobs:
            raise CaffeError(f"{where}: no weights for this {layer.type} layer of the prototxt")
        arrays = blobs[layer.name]
        expected = 2 if layer.params["bias_term"] else 1
        if len(arrays) != expected:
            raise CaffeError(f"{where}: {len(arrays)} blobs, expected {expected}")
        n = layer.params["num_output"]
        weights = arrays[0]
        if weights.shape[0] != n or (expected == 2 and arrays[1].shape != (n,)):
            raise CaffeError(f"{where}: weights {weights.shape} and bias "
                             f"{arrays[1].shape if expected == 2 else None} do not fit num_output={n}")
        if layer.type == "Convolution":
            p = layer.params
            kernel = (p["kernel_h"] or p["kernel_size"][0], p["kernel_w"] or p["kernel_size"][-1])
            if weights.ndim != 4 or weights.shape[2:] != kernel:
                raise CaffeError(f"{where}: weights of shape {weights.shape} do not fit kernel {kernel}")


def load(prototxt, caffemodel, last_layer=None, progress=True, check=None):
    """Load a Caffe network: prototxt layers plus caffemodel weights (through the HDF5 cache).

    Parameters
    ----------
    prototxt : str or Path
        ``deploy.prototxt`` (V1 or V2).
    caffemodel : str or Path
        Trained weights (V1 or V2). Converted once to ``weights_dir()/caffe-<sha1>.h5``.
    last_layer : str, optional
        Keep only the layers up to and including this one (e.g. ``"pool5"`` for AlexNet's
        convolutional trunk when the caffemodel holds no fc weights).
    progress : bool
        Progress bar while converting.
    check : callable, optional
        ``check(model)`` raises if the model does not fit its user (e.g. :class:`repro.network.Network`
        checks input channels); run before the conversion is cached, so a rejected model leaves none.

    Returns
    -------
    CaffeModel

    Raises
    ------
    CaffeError
        Corrupt or truncated files, or a prototxt layer whose weights are missing or of the
        wrong shape; the message names the file and the layer. No cache is written then.
    """
    prototxt, caffemodel = Path(prototxt), Path(caffemodel)
    name, layers = parse_prototxt(prototxt)
    if last_layer is not None:
        names = [layer.name for layer in layers]
        if last_layer not in names:
            raise CaffeError(f"{prototxt}: no layer {last_layer!r}")
        layers = layers[:names.index(last_layer) + 1]
    if not caffemodel.is_file():
        raise FileNotFoundError(f"caffemodel {caffemodel} not found (see `python -m repro download`)")
    sha1 = sha1sum(caffemodel)
    cache = cache_path(sha1)
    blobs = _read_cache(cache, sha1) if cache.is_file() else None
    cached = blobs is not None
    if not cached:
        blobs = read_caffemodel(caffemodel, progress=progress)
    _check_blobs(layers, blobs, caffemodel)
    model = CaffeModel(name, layers, blobs, prototxt, caffemodel, sha1)
    if check is not None:
        check(model)
    if not cached:                      # only now: bad input leaves no cache behind
        _write_cache(cache, blobs, prototxt.read_text(), caffemodel.name, sha1)
    return model

