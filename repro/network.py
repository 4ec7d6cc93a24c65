"""Caffe networks as Theano graphs, every layer output readable by name.

The paper (Section 2.2) feeds images through Caffe's pretrained Krizhevsky network
("with the architecture and trained filters as published by Jia et al. (2014)"),
keeps the convolutional part and reads out every intermediate layer. :class:`Network`
turns any ``deploy.prototxt`` + ``.caffemodel`` into such a graph:

* Caffe runs ReLUs in place (``conv1`` is overwritten by ``relu1``); here every layer
  is its own output, so ``conv1`` and ``relu1`` can both be read (the paper's 15
  AlexNet layers, :data:`ALEXNET_LAYERS`, 3712 feature maps).
* Any input size. Two padding modes: ``'caffe'`` uses the prototxt's padding;
  ``'full'`` zero-pads every convolution by ``kernel - 1`` on each side (Theano's
  ``border_mode='full'``), as the paper does ("convolutions of type full").
  Pooling keeps its prototxt padding and Caffe's ceil rounding in both modes.

Coordinates
-----------
:meth:`Network.receptive_field` gives, for a layer, ``(size, stride, offset)`` in pixels
of the network input: output unit ``i`` (along rows or columns) sees input pixels
``offset + i * stride`` to ``offset + i * stride + size - 1``, so its centre is at
input pixel ``offset + i * stride + (size - 1) / 2``. In ``'full'`` mode offsets are
negative (the padding reaches outside the image): AlexNet's ``conv1`` has size 11,
stride 4, offset -10 there (offset 0 in ``'caffe'`` mode). The network input is the
image downsampled by :func:`preprocess`; multiply by ``downsample`` (and add
``(downsample - 1) / 2`` for the centre of a block) to reach original image pixels.

Layer types
-----------
Each Caffe layer type is one class (:class:`Convolution`, :class:`Pooling`, ...) that knows
its output shape, its receptive field, its Theano graph and how its weights must fit its
input; :data:`LAYER_TYPES` registers them and :class:`Network` only walks the layers and
asks each one. Adding a type is a class and an entry there. What the Caffe file format
says of a type stays in :mod:`repro.caffe`: the protobuf fields of parameters it does not
read yet and, for a type with weights, its blob layout (:data:`repro.caffe.LEARNED_TYPES`).
"""
from collections import namedtuple

import numpy as np

from . import caffe
from .backend import T, floatX, stored_function, theano

__all__ = ["ALEXNET_LAYERS", "LAYER_TYPES", "SUPPORTED_TYPES", "PADDINGS", "ReceptiveField", "Network",
           "preprocess", "preprocess_graph", "conv_window", "pool_window", "conv_output_size", "pool_output_size", "LayerType",
           "Input", "Convolution", "ReLU", "Pooling", "LRN", "Concat", "InnerProduct", "Dropout", "Softmax"]

#: The paper's 15 AlexNet layers (Section 2.2), 3712 feature maps in total.
ALEXNET_LAYERS = ("conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2", "pool2",
                  "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5")

PADDINGS = ("caffe", "full")

ReceptiveField = namedtuple("ReceptiveField", "size stride offset")
ReceptiveField.__doc__ = """Input pixels seen by a layer's unit ``i``: ``offset + i * stride`` ... ``+ size - 1``."""


# --------------------------------------------------------------------------------------
# Layer windows: kernel extent, stride, padding (plain integers, shared by shape inference and receptive fields)
# --------------------------------------------------------------------------------------
def _pair(params, name, default):
    """:func:`repro.caffe.param_pair` as integers: ``(h, w)``."""
    h, w = caffe.param_pair(params, name, default)
    return int(h), int(w)


def conv_window(layer, padding="caffe"):
    """Kernel (dilated), stride, pad and dilation of a Convolution layer as (h, w) pairs."""
    p = layer.params
    kernel = _pair(p, "kernel_size", None)
    stride = _pair(p, "stride", 1)
    dilation = _pair(p, "dilation", 1)
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    pad = tuple(e - 1 for e in extent) if padding == "full" else _pair(p, "pad", 0)
    return dict(kernel=kernel, extent=extent, stride=stride, pad=pad, dilation=dilation)


def pool_window(layer):
    """Kernel, stride and pad of a Pooling layer as (h, w) pairs, plus ``ceil``."""
    p = layer.params
    return dict(kernel=_pair(p, "kernel_size", None), stride=_pair(p, "stride", 1),
                pad=_pair(p, "pad", 0), ceil=p["round_mode"] == "CEIL")


def conv_output_size(size, extent, stride, pad):
    """Caffe/Theano convolution output length: ``(size + 2 pad - extent) // stride + 1``."""
    return (size + 2 * pad - extent) // stride + 1


def pool_output_size(size, kernel, stride, pad, ceil=True):
    """Caffe's pooling output length (works on ints and Theano scalars).

    Caffe rounds up, ``ceil((size + 2 pad - kernel) / stride) + 1``, then drops a last
    window that would start inside the bottom/right padding.
    """
    if ceil:
        out = (size + 2 * pad - kernel + stride - 1) // stride + 1
    else:
        out = (size + 2 * pad - kernel) // stride + 1
    if pad > 0:
        out = out - ((out - 1) * stride >= size + pad)
    return out


# --------------------------------------------------------------------------------------
# Layer types: one class each, registered in LAYER_TYPES. Shapes are (channels, height, width),
# Theano values (batch, channels, height, width); every method gets one value per bottom blob.
# --------------------------------------------------------------------------------------
class LayerType:
    """One prototxt layer of a given type; this base class is an identity (Caffe's Dropout at test time).

    A subclass overrides what its type changes; :class:`Network` only calls these methods.

    Parameters
    ----------
    layer : repro.caffe.Layer
        Name, bottoms, tops and ``params`` (Caffe's defaults filled in).
    padding : {'caffe', 'full'}
        The network's convolution padding mode.
    """
    #: An input layer: its tops carry the network input; it has no output of its own.
    is_input = False

    def __init__(self, layer, padding):
        self.layer, self.name, self.params, self.padding = layer, layer.name, layer.params, padding

    @property
    def learned(self):
        """The caffemodel holds weights for this type (:data:`repro.caffe.LEARNED_TYPES`, which
        :func:`repro.caffe.load` checks); :meth:`graph` then gets them as Theano shared variables."""
        return self.layer.type in caffe.LEARNED_TYPES

    def output_shape(self, shapes):
        """``(channels, height, width)`` of the output, from those of the inputs."""
        return shapes[0]

    def receptive_field(self, fields):
        """:class:`ReceptiveField` of the output units, from those of the inputs."""
        return fields[0]

    def graph(self, inputs, blobs):
        """Symbolic output from symbolic inputs and ``blobs`` (shared weights, bias; empty unless learned)."""
        return inputs[0]

    def weights_error(self, shapes, arrays):
        """Why the caffemodel's ``arrays`` do not fit inputs of ``shapes``, or None (only for learned types)."""
        return None


class Input(LayerType):
    """The prototxt's input blob; it may declare the input shape."""
    is_input = True

    def declared_shape(self):
        """``(channels, height, width)`` from the prototxt, or None if it declares no 4-D shape."""
        shapes = self.params.get("shape", [])
        dims = [int(d) for d in shapes[0]["dim"]] if shapes else []
        return tuple(dims[1:4]) if len(dims) == 4 else None


class Dropout(LayerType):
    """Identity at test time."""


def _window_field(name, extent, window, field):
    """Receptive field after a window of ``extent`` (h, w) pixels with ``window``'s stride and pad."""
    size, stride, offset = field
    (stride_h, stride_w), (pad_h, pad_w) = window["stride"], window["pad"]
    if extent[0] != extent[1] or stride_h != stride_w or pad_h != pad_w:
        raise ValueError(f"layer {name!r}: non-square window, no single receptive field")
    return ReceptiveField(size + (extent[0] - 1) * stride, stride * stride_h, offset - pad_h * stride)


def _weights_and_bias(blobs):
    return blobs[0], (blobs[1] if len(blobs) > 1 else None)


class Convolution(LayerType):
    """Caffe's convolution (a correlation): grouped, strided, dilated; padded as :func:`conv_window` says."""

    def output_shape(self, shapes):
        _, h, w = shapes[0]
        g = conv_window(self.layer, self.padding)
        return (self.params["num_output"],
                conv_output_size(h, g["extent"][0], g["stride"][0], g["pad"][0]),
                conv_output_size(w, g["extent"][1], g["stride"][1], g["pad"][1]))

    def receptive_field(self, fields):
        g = conv_window(self.layer, self.padding)
        return _window_field(self.name, g["extent"], g, fields[0])

    def graph(self, inputs, blobs):
        weights, bias = _weights_and_bias(blobs)
        g = conv_window(self.layer, self.padding)
        # 'full' mode is explicit padding by extent - 1, the same as Theano's border_mode='full'
        y = T.nnet.conv2d(inputs[0], weights, border_mode=g["pad"], subsample=g["stride"],
                          filter_flip=False,  # Caffe correlates
                          filter_dilation=g["dilation"], num_groups=self.params["group"])
        return y if bias is None else y + bias.dimshuffle("x", 0, "x", "x")

    def weights_error(self, shapes, arrays):
        weights, group, channels = arrays[0], self.params["group"], shapes[0][0]
        if channels % group or weights.shape[1] != channels // group or self.params["num_output"] % group:
            return f"weights {weights.shape} do not fit {channels} input channels in {group} group(s)"
        return None


class ReLU(LayerType):
    """``max(x, 0)``, or ``x`` times ``negative_slope`` below 0 (leaky)."""

    def graph(self, inputs, blobs):
        x, slope = inputs[0], self.params["negative_slope"]
        return T.nnet.relu(x, np.float32(slope)) if slope else T.maximum(x, np.float32(0))


def _pool(x, window, method):
    """Caffe pooling: explicit padding (lowest float for MAX, 0 for AVE) up to Caffe's output size."""
    from theano.tensor.signal.pool import pool_2d

    (kh, kw), (sh, sw), (ph, pw) = window["kernel"], window["stride"], window["pad"]
    if method == "MAX" and window["ceil"] and (ph, pw) == (0, 0) and sh <= kh and sw <= kw:
        # Theano's own partial windows at the border then give exactly Caffe's ceil rounding
        return pool_2d(x, ws=(kh, kw), stride=(sh, sw), ignore_border=False, mode="max")
    height, width = x.shape[2], x.shape[3]
    oh = pool_output_size(height, kh, sh, ph, window["ceil"])
    ow = pool_output_size(width, kw, sw, pw, window["ceil"])
    # canvas large enough for every window; the pooled data sits at (ph, pw)
    ch = T.maximum((oh - 1) * sh + kh, height + 2 * ph)
    cw = T.maximum((ow - 1) * sw + kw, width + 2 * pw)
    # Caffe starts a max at -FLT_MAX (what a window beyond the image returns) and excludes padding
    fill = np.finfo(np.float32).min if method == "MAX" else np.float32(0)
    canvas = T.alloc(fill, x.shape[0], x.shape[1], ch, cw)
    canvas = T.set_subtensor(canvas[:, :, ph:ph + height, pw:pw + width], x)
    mode = {"MAX": "max", "AVE": "sum"}[method]
    y = pool_2d(canvas, ws=(kh, kw), stride=(sh, sw), ignore_border=True, mode=mode)[:, :, :oh, :ow]
    if method == "AVE":
        # Caffe divides by the window clipped to the padded image (not the ceil overhang)
        rows, cols = T.arange(oh) * sh - ph, T.arange(ow) * sw - pw
        dh = T.minimum(rows + kh, height + ph) - rows
        dw = T.minimum(cols + kw, width + pw) - cols
        y = y / T.cast(T.outer(dh, dw), floatX).dimshuffle("x", "x", 0, 1)
    return y


class Pooling(LayerType):
    """Caffe's MAX or AVE pooling with its padding and ceil rounding (:func:`pool_output_size`), or global."""

    def output_shape(self, shapes):
        c, h, w = shapes[0]
        if self.params["global_pooling"]:
            return (c, 1, 1)
        g = pool_window(self.layer)
        return (c,) + tuple(pool_output_size(n, k, s, p, g["ceil"]) for n, k, s, p in
                            zip((h, w), g["kernel"], g["stride"], g["pad"]))

    def receptive_field(self, fields):
        if self.params["global_pooling"]:
            raise ValueError(f"layer {self.name!r}: global pooling sees the whole input")
        g = pool_window(self.layer)
        return _window_field(self.name, g["kernel"], g, fields[0])

    def graph(self, inputs, blobs):
        x, method = inputs[0], self.params["pool"]
        if self.params["global_pooling"]:
            return (x.max if method == "MAX" else x.mean)(axis=(2, 3), keepdims=True)
        return _pool(x, pool_window(self.layer), method)


class LRN(LayerType):
    """Caffe's LRN across channels: ``x / (k + alpha/size * sum of x² over size channels)^beta``."""

    def graph(self, inputs, blobs):
        x, p = inputs[0], self.params
        size, channels = p["local_size"], x.shape[1]
        half = (size - 1) // 2
        squares = T.zeros((x.shape[0], channels + size - 1, x.shape[2], x.shape[3]), dtype=x.dtype)
        squares = T.set_subtensor(squares[:, half:half + channels], T.sqr(x))
        window = sum(squares[:, i:i + channels] for i in range(size))
        scale = np.float32(p["k"]) + np.float32(p["alpha"] / size) * window
        if p["beta"] == 0.75:  # AlexNet's and GoogLeNet's value: two square roots are much cheaper than pow
            return x * T.sqrt(T.sqrt(scale)) / scale
        return x * scale ** np.float32(-p["beta"])


class Concat(LayerType):
    """Channels of equal-sized maps stacked; the receptive field is the union of the branches'."""

    def output_shape(self, shapes):
        if self.params["axis"] != 1 or len({s[1:] for s in shapes}) != 1:
            raise caffe.CaffeError(f"layer {self.name!r}: can only concatenate channels "
                                   f"of equal-sized maps, got {shapes}")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]

    def receptive_field(self, fields):
        if len({f.stride for f in fields}) != 1:
            raise ValueError(f"layer {self.name!r}: branches of different strides")
        start = min(f.offset for f in fields)
        end = max(f.offset + f.size for f in fields)
        return ReceptiveField(end - start, fields[0].stride, start)

    def graph(self, inputs, blobs):
        return T.concatenate(inputs, axis=self.params["axis"])


class InnerProduct(LayerType):
    """A fully connected layer on the flattened input; output ``(num_output, 1, 1)``."""

    def output_shape(self, shapes):
        return (self.params["num_output"], 1, 1)

    def receptive_field(self, fields):
        raise ValueError(f"layer {self.name!r}: an inner product sees the whole input")

    def graph(self, inputs, blobs):
        weights, bias = _weights_and_bias(blobs)
        y = T.dot(inputs[0].flatten(2), weights if self.params["transpose"] else weights.T)
        if bias is not None:
            y = y + bias.dimshuffle("x", 0)
        return y.dimshuffle(0, 1, "x", "x")

    def weights_error(self, shapes, arrays):
        weights, inputs = arrays[0], int(np.prod(shapes[0]))
        if weights.shape[0 if self.params["transpose"] else 1] != inputs:
            return f"weights {weights.shape} do not fit {inputs} inputs"
        return None


class Softmax(LayerType):
    """Softmax over channels."""

    def graph(self, inputs, blobs):
        x = inputs[0]
        e = T.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


#: Caffe layer type -> its class: the one place a new type is registered.
LAYER_TYPES = {"Input": Input, "Convolution": Convolution, "ReLU": ReLU, "Pooling": Pooling, "LRN": LRN,
               "Concat": Concat, "InnerProduct": InnerProduct, "Dropout": Dropout, "Softmax": Softmax}

#: Layer types :class:`Network` builds.
SUPPORTED_TYPES = tuple(LAYER_TYPES)


# --------------------------------------------------------------------------------------
class Network:
    """A Caffe network as a Theano graph with named layer outputs.

    Parameters
    ----------
    prototxt, caffemodel : str or Path
        Caffe files (V1 or V2); weights are cached as HDF5 by :func:`repro.caffe.load`.
    padding : {'caffe', 'full'}
        ``'caffe'``: the prototxt's convolution padding. ``'full'``: every convolution
        zero-pads its input by ``kernel - 1`` (the paper's setting).
    last_layer : str, optional
        Build only up to this layer (e.g. ``'pool5'`` for AlexNet's convolutional trunk).

    Attributes
    ----------
    layer_names : tuple of str
        Every layer output in prototxt order (input layers excluded); in-place ReLUs
        are separate outputs under their own layer names (``relu1``).
    model : repro.caffe.CaffeModel
    """

    def __init__(self, prototxt, caffemodel, padding="caffe", last_layer=None):
        if padding not in PADDINGS:  # before reading any file
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        caffe.load(prototxt, caffemodel, last_layer=last_layer, check=lambda model: self._setup(model, padding))

    @classmethod
    def from_model(cls, model, padding="caffe"):
        """A network from an in-memory :class:`repro.caffe.CaffeModel` (e.g. deterministic random weights).

        Parameters
        ----------
        model : repro.caffe.CaffeModel
            Layers and blobs; its ``sha1`` must name the weights (it keys feature caches).
        padding : {'caffe', 'full'}
        """
        network = cls.__new__(cls)
        network._setup(model, padding)
        return network

    def _setup(self, model, padding):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.padding = padding
        self.model = model
        for layer in self.model.layers:
            if layer.type not in LAYER_TYPES:
                raise caffe.CaffeError(f"{self.model.prototxt}, layer {layer.name!r}: "
                                       f"unsupported layer type {layer.type!r} "
                                       f"(supported: {', '.join(LAYER_TYPES)})")
        self._layers = [LAYER_TYPES[layer.type](layer, padding) for layer in self.model.layers]
        self.layer_names = tuple(op.name for op in self._layers if not op.is_input)
        self._input = T.tensor4("image", dtype=floatX)
        self._outputs = None
        self._functions = {}
        self._check_weights()

    def __repr__(self):
        return (f"Network({self.model.name!r}, padding={self.padding!r}, "
                f"{len(self.layer_names)} layers, last={self.layer_names[-1]!r})")

    def _walk(self, visit, start, until=None):
        """Run ``visit(layer type object, [bottom values]) -> value`` through the layers (up to ``until``).

        ``start`` is the value of the input blobs; returns ``{layer name: value}``.
        """
        blobs, per_layer = {}, {}
        for op in self._layers:
            layer = op.layer
            if op.is_input:
                for top in layer.tops:
                    blobs[top] = start
                continue
            missing = [b for b in layer.bottoms if b not in blobs]
            if missing:
                raise caffe.CaffeError(f"{self.model.prototxt}, layer {layer.name!r}: "
                                       f"input blob(s) {missing} produced by no earlier layer")
            value = visit(op, [blobs[b] for b in layer.bottoms])
            for top in layer.tops:
                blobs[top] = value
            per_layer[layer.name] = value
            if layer.name == until:
                break
        return per_layer

    def _arrays(self, op):
        """The caffemodel's float32 arrays of a learned layer (``[]`` for other types)."""
        return self.model.blobs[op.name] if op.learned else []

    # -- shapes and receptive fields ------------------------------------------------
    def output_shapes(self, input_hw):
        """``{layer: (channels, height, width)}`` for a ``(height, width)`` input."""
        channels = self._declared_input()[0]
        return self._walk(lambda op, shapes: op.output_shape(shapes),
                          (channels,) + tuple(int(n) for n in input_hw))

    def output_shape(self, layer, input_hw):
        """``(channels, height, width)`` of ``layer`` for an input of ``(height, width)`` pixels."""
        return self.output_shapes(input_hw)[self._known(layer)]

    def _declared_input(self):
        """``(channels, height, width)`` of the prototxt's input (``(3, 227, 227)`` if it declares none)."""
        first = self._layers[0]
        return (first.declared_shape() if first.is_input else None) or (3, 227, 227)

    def receptive_field(self, layer):
        """Receptive field of ``layer``'s units in input pixels (see the module docstring).

        Returns
        -------
        ReceptiveField
            ``(size, stride, offset)``: unit ``i`` sees input pixels
            ``offset + i * stride`` ... ``offset + i * stride + size - 1`` (same for rows and columns).
        """
        layer = self._known(layer)
        fields = self._walk(lambda op, inputs: op.receptive_field(inputs), ReceptiveField(1, 1, 0), until=layer)
        return fields[layer]

    def _known(self, layer):
        if layer not in self.layer_names:
            raise KeyError(f"no layer {layer!r} in {self.model.prototxt} "
                           f"(layers: {', '.join(self.layer_names)})")
        return layer

    def _check_weights(self):
        """Weights must fit the channels that reach each layer (checked on the prototxt's input size)."""
        def visit(op, shapes):
            error = op.weights_error(shapes, self._arrays(op)) if op.learned else None
            if error:
                raise caffe.CaffeError(f"{self.model.caffemodel}, layer {op.name!r}: {error}")
            return op.output_shape(shapes)

        self._walk(visit, self._declared_input())

    # -- Theano graph -----------------------------------------------------------------
    def _graph(self, op, inputs):
        shared = [theano.shared(array.astype(floatX), name=f"{op.name}/{suffix}")
                  for array, suffix in zip(self._arrays(op), "Wb")]
        return op.graph(inputs, shared)

    def outputs(self):
        """``{layer name: symbolic (1, channels, height, width) output}``, built once."""
        if self._outputs is None:
            self._outputs = self._walk(self._graph, self._input)
        return self._outputs

    @property
    def input(self):
        """The symbolic input, ``(1, 3, height, width)`` float32, BGR, mean-subtracted."""
        return self._input

    def function(self, layers):
        """Compiled function mapping an input to the outputs of ``layers``; cached per layer list.

        Parameters
        ----------
        layers : sequence of str
            Names from :attr:`layer_names`.

        Returns
        -------
        callable
            ``f(image) -> list of (channels, height, width) float32 arrays``, where ``image``
            is ``(1, 3, height, width)`` float32 (see :func:`preprocess`).
        """
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        if layers not in self._functions:
            outputs = self.outputs()
            compiled = theano.function([self._input], [outputs[self._known(n)][0] for n in layers],
                                       name=f"{self.model.name}:{','.join(layers)}")
            self._functions[layers] = _Forward(compiled, layers)
        return self._functions[layers]

    def image_function(self, layers, mean=(104.0, 117.0, 123.0), downsample=2):
        """Compiled function mapping an ``(height, width, 3)`` uint8 RGB image to the outputs of ``layers``,
        with :func:`preprocess` (downsampling, BGR, mean) inside the graph (:func:`preprocess_graph`): the same
        input to the bit as ``function(layers)(preprocess(image, mean, downsample))``, without NumPy's slow
        strided block mean. Cached per layer list, mean and downsampling.

        Parameters
        ----------
        layers : sequence of str
        mean : sequence of 3 floats (B, G, R)
            A per-channel mean (a mean *image* needs :func:`preprocess` and :meth:`function`).
        downsample : int

        Returns
        -------
        callable
            ``f(image) -> list of (channels, height, width) float32 arrays``.
        """
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        mean = tuple(float(m) for m in np.asarray(mean, dtype=np.float32).reshape(-1))
        key = ("image", layers, mean, int(downsample))
        if key not in self._functions:
            def build():
                outputs = self.outputs()
                image = T.tensor3("rgb", dtype="uint8")
                return theano.function([image], [outputs[self._known(n)][0] for n in layers],
                                       givens={self._input: preprocess_graph(image, mean, downsample)},
                                       name=f"{self.model.name}:image:{','.join(layers)}")

            for name in layers:
                self._known(name)
            compiled = stored_function("network", (self.model.sha1, caffe.network_digest(self.model.layers),
                                                   self.padding, *key), [__file__, caffe.__file__], build)
            self._functions[key] = _ImageForward(compiled, layers, int(downsample))
        return self._functions[key]

    def forward(self, image, layers):
        """``function(layers)(image)`` as a ``{layer: (channels, height, width)}`` dict."""
        return dict(zip(layers, self.function(layers)(image)))


class _Forward:
    """A compiled network function that checks its input (see :meth:`Network.function`)."""

    def __init__(self, compiled, layers):
        self.compiled, self.layers = compiled, layers

    def __call__(self, image):
        image = np.asarray(image)
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"expected a (1, 3, height, width) input, got shape {image.shape}")
        return self.compiled(np.ascontiguousarray(image, dtype=floatX))


class _ImageForward:
    """A compiled network function of a uint8 RGB image (see :meth:`Network.image_function`)."""

    def __init__(self, compiled, layers, downsample):
        self.compiled, self.layers, self.downsample = compiled, layers, downsample

    def __call__(self, image):
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (height, width, 3) uint8 RGB image, got shape {image.shape}, "
                             f"{image.dtype}")
        if min(image.shape[:2]) < self.downsample:
            raise ValueError(f"an image of {image.shape[:2]} pixels is smaller than the downsampling "
                             f"({self.downsample})")
        return self.compiled(image)


# --------------------------------------------------------------------------------------
def preprocess_graph(image, mean=(104.0, 117.0, 123.0), downsample=2):
    """:func:`preprocess` as a Theano graph: a symbolic ``(height, width, 3)`` uint8 RGB image -> the symbolic
    ``(1, 3, height // downsample, width // downsample)`` float32 network input (BGR, block means, minus a
    per-channel ``mean``).

    The same values as :func:`preprocess`, to the bit for factors that are powers of two (the paper's 2): a
    block's sum of whole numbers up to 255 is exact in float32 in any order (below 2**24), and the subtraction
    of the mean is the same float32 operation. Theano turns the division by the block's size into a product with
    its inverse, exact for powers of two and within one float32 rounding otherwise (3: 1.5e-5 at most). One
    elementwise loop reads the uint8 pixels once (NumPy's strided block mean of a float32 copy took some 20 ms
    for an 800 x 600 image, this loop 2 ms).
    """
    f = int(downsample)
    if f != downsample or f < 1:
        raise ValueError(f"downsample must be a positive integer, got {downsample}")
    mean = np.asarray(mean, dtype=np.float32)
    if mean.shape != (3,):
        raise ValueError(f"preprocess_graph takes a per-channel mean (B, G, R), got shape {mean.shape}")
    bgr = image.dimshuffle(2, 0, 1)[::-1]                                   # (3, H, W), a view
    if f == 1:
        pixels = T.cast(bgr, floatX)
    else:
        height, width = (bgr.shape[1] // f) * f, (bgr.shape[2] // f) * f
        blocks = [T.cast(bgr[:, i:height:f, j:width:f], floatX) for i in range(f) for j in range(f)]
        pixels = T.add(*blocks) / np.float32(f * f)
    return (pixels - T.constant(mean[:, None, None])).dimshuffle("x", 0, 1, 2)


def preprocess(image, mean=(104.0, 117.0, 123.0), downsample=2, size=None):
    """Turn an RGB image into a Caffe network input.

    Caffe expects BGR, 0–255, minus the ImageNet mean. The paper downsamples images
    by 2 before the network (Section 2.2).

    Parameters
    ----------
    image : ndarray, shape (height, width, 3), uint8 RGB (grey ``(height, width)`` is repeated)
    mean : sequence of 3 floats (B, G, R) or ndarray, shape (3, mh, mw)
        Per-channel mean, or Caffe's mean image (:func:`repro.caffe.read_mean`), which is
        resized bilinearly to the network input size.
    downsample : int
        Integer factor; each output pixel is the mean of a ``downsample × downsample``
        block (rows/columns beyond a multiple of the factor are dropped), so output pixel
        ``i`` covers input pixels ``i * downsample`` ... ``(i + 1) * downsample - 1``.
    size : (height, width), optional
        Instead of ``downsample``, resize bilinearly to this size (e.g. 224 × 224 for
        classification).

    Returns
    -------
    ndarray, shape (1, 3, height // downsample, width // downsample), float32
    """
    from skimage.transform import resize

    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (height, width, 3) RGB image, got shape {image.shape}")
    bgr = image[:, :, ::-1].astype(np.float32)
    if size is not None:
        bgr = resize(bgr, tuple(size), order=1, preserve_range=True, anti_aliasing=False).astype(np.float32)
    elif downsample != 1:
        f = int(downsample)
        if f != downsample or f < 1:
            raise ValueError(f"downsample must be a positive integer, got {downsample}")
        h, w = bgr.shape[0] // f, bgr.shape[1] // f
        bgr = bgr[:h * f, :w * f].reshape(h, f, w, f, 3).mean(axis=(1, 3), dtype=np.float32)
    chw = bgr.transpose(2, 0, 1)
    mean = np.asarray(mean, dtype=np.float32)
    if mean.ndim == 1:
        mean = mean[:, None, None]
    elif mean.shape[1:] != chw.shape[1:]:
        mean = resize(mean, (3,) + chw.shape[1:], order=1, preserve_range=True,
                      anti_aliasing=False).astype(np.float32)
    return np.ascontiguousarray((chw - mean)[None], dtype=np.float32)
