"""Feature maps held as bfloat16, and the readout's weighted sum read straight from them.

Training sets of many layers do not fit in memory as float32 (all 15 AlexNet layers of the 350 OSIE
training images: 8.5 GB). They are held as *bfloat16*: the upper 16 bits of each float32, kept as
``uint16`` (:func:`compact`; half the bytes). bfloat16 keeps float32's range and 8 significant bits
(relative error at most 2^-8 = 0.4 %).

A fit of such a set is bound by memory bandwidth: every evaluation reads all the training features
twice, for the weighted sum ``sum_k w_k r_k`` and for its gradient ``d/dw_k = <r_k, d sum>``. Expanding
them to float32 first would read 2 bytes, write 4 and read those 4 bytes twice per value; the two
Theano ops here (:func:`weighted_sum` and its gradient) read the 2 bytes of each value once each, four
channels at a time (``benchmarks/results/readout.md``, ``benchmarks/results/fold.md``).

Shapes: maps ``(C, ...)`` (a layer's stack ``(C, B, h, w)``), weights ``(C,)``, sums ``(...)``.
"""
import numpy as np

from .backend import T, theano

__all__ = ["compact", "expand", "weighted_sum", "WeightedSum", "Projection"]


def compact(array):
    """float32 -> its upper 16 bits (bfloat16), rounded to nearest even, as uint16: half the memory.

    It expands back to float32 with an integer cast and a shift (:func:`expand`), several times faster
    than NumPy's float16 conversion. NaN and infinity are not expected in feature maps.
    """
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def expand(array):
    """:func:`compact` maps -> float32 (float32 maps pass unchanged)."""
    if array.dtype != np.uint16:
        return array
    return (array.astype(np.uint32) << 16).view(np.float32)


#: C helpers of both ops: a bfloat16's float32 value, and the work split into blocks of this many values
#: per channel, so that a block of the sum (or of its gradient) stays in the L1 cache while every channel's
#: block of maps streams past it.
_SUPPORT = """
#include <string.h>
#define BF16_BLOCK 2048
static inline float bf16_value(npy_uint16 bits) {
    npy_uint32 wide = ((npy_uint32) bits) << 16;
    float value;
    memcpy(&value, &wide, sizeof value);
    return value;
}
"""

#: Checks and contiguous views shared by both ops' C code (``%(maps)s``, ``%(fail)s`` filled in by Theano). The
#: ops' code is one block: Theano's error exits jump out of it, never across its declarations.
_PROLOGUE = """{
    PyArrayObject* maps_c = PyArray_GETCONTIGUOUS(%(maps)s);
    if (maps_c == NULL) { %(fail)s }
    const int nd = PyArray_NDIM(maps_c);
    const npy_intp channels = PyArray_DIMS(maps_c)[0];
    npy_intp values = 1;                               /* per channel */
    for (int d = 1; d < nd; ++d) values *= PyArray_DIMS(maps_c)[d];
    const npy_uint16* __restrict__ x = (const npy_uint16*) PyArray_DATA(maps_c);
"""


class _MapsOp(theano.Op):
    """What both ops share: the C helpers, and C code made of :data:`_PROLOGUE` and the op's own ``_BODY``,
    in which the inputs are named ``_INPUTS`` and the output ``out``."""

    __props__ = ()
    _INPUTS = ()
    _BODY = ""

    def c_support_code(self):
        return _SUPPORT

    def c_code(self, node, name, inputs, outputs, sub):
        return (_PROLOGUE + self._BODY + "}\n") % dict(zip(self._INPUTS, inputs), out=outputs[0], fail=sub["fail"])

    def c_code_cache_version(self):
        return (2,)


class WeightedSum(_MapsOp):
    """``sum_c w[c] * expand(maps[c])``: weights ``(C,)`` float32 and bfloat16 maps ``(C, ...)`` uint16 ->
    ``(...)`` float32. Its gradient with respect to ``w`` is :class:`Projection`; the maps are data."""

    _INPUTS = ("w", "maps")
    _BODY = """
    if (PyArray_DIMS(%(w)s)[0] != channels) {
        PyErr_Format(PyExc_ValueError, "WeightedSum: %%ld weights for %%ld channels of maps",
                     (long) PyArray_DIMS(%(w)s)[0], (long) channels);
        Py_DECREF(maps_c);
        %(fail)s
    }
    PyArrayObject* w_c = PyArray_GETCONTIGUOUS(%(w)s);
    Py_XDECREF(%(out)s);
    %(out)s = (PyArrayObject*) PyArray_ZEROS(nd - 1, PyArray_DIMS(maps_c) + 1, NPY_FLOAT32, 0);
    if (w_c == NULL || %(out)s == NULL) { Py_XDECREF(w_c); Py_DECREF(maps_c); %(fail)s }
    const float* __restrict__ weights = (const float*) PyArray_DATA(w_c);
    float* __restrict__ sum = (float*) PyArray_DATA(%(out)s);
    for (npy_intp start = 0; start < values; start += BF16_BLOCK) {
        const npy_intp stop = start + BF16_BLOCK < values ? start + BF16_BLOCK : values;
        npy_intp c = 0;
        for (; c + 4 <= channels; c += 4) {            /* four channels per pass over the block of the sum */
            const float w0 = weights[c], w1 = weights[c + 1], w2 = weights[c + 2], w3 = weights[c + 3];
            const npy_uint16* __restrict__ r0 = x + c * values;
            const npy_uint16* __restrict__ r1 = r0 + values;
            const npy_uint16* __restrict__ r2 = r1 + values;
            const npy_uint16* __restrict__ r3 = r2 + values;
            for (npy_intp n = start; n < stop; ++n)
                sum[n] += (w0 * bf16_value(r0[n]) + w1 * bf16_value(r1[n]))
                          + (w2 * bf16_value(r2[n]) + w3 * bf16_value(r3[n]));
        }
        for (; c < channels; ++c) {
            const float weight = weights[c];
            const npy_uint16* __restrict__ row = x + c * values;
            for (npy_intp n = start; n < stop; ++n) sum[n] += weight * bf16_value(row[n]);
        }
    }
    Py_DECREF(w_c);
    Py_DECREF(maps_c);
"""

    def make_node(self, w, maps):
        w, maps = T.cast(T.as_tensor_variable(w), "float32"), T.as_tensor_variable(maps)
        if w.ndim != 1 or maps.dtype != "uint16" or maps.ndim < 1:
            raise TypeError(f"WeightedSum takes weights (C,) and uint16 maps (C, ...), got {w.type} and {maps.type}")
        return theano.Apply(self, [w, maps], [T.TensorType("float32", maps.broadcastable[1:])()])

    def perform(self, node, inputs, outputs):
        w, maps = inputs
        if w.shape[0] != maps.shape[0]:
            raise ValueError(f"WeightedSum: {w.shape[0]} weights for {maps.shape[0]} channels of maps")
        outputs[0][0] = np.tensordot(w, expand(maps), axes=1).astype(np.float32)

    def infer_shape(self, node, shapes):
        return [shapes[1][1:]]

    def grad(self, inputs, output_grads):
        w, maps = inputs
        return [Projection()(maps, output_grads[0]),
                theano.gradient.grad_undefined(self, 1, maps, "the feature maps are data, not parameters")]


class Projection(_MapsOp):
    """``<expand(maps[c]), g>`` for every channel: bfloat16 maps ``(C, ...)`` uint16 and ``g`` ``(...)`` float32 ->
    ``(C,)`` float32, the gradient of :class:`WeightedSum` with respect to its weights. Sums run in float32
    over blocks of values and in float64 across blocks."""

    _INPUTS = ("maps", "g")
    _BODY = """
    int same = PyArray_NDIM(%(g)s) == nd - 1;
    for (int d = 1; same && d < nd; ++d) same = PyArray_DIMS(%(g)s)[d - 1] == PyArray_DIMS(maps_c)[d];
    if (!same) {
        PyErr_SetString(PyExc_ValueError, "Projection: the gradient's shape is not that of one channel of the maps");
        Py_DECREF(maps_c);
        %(fail)s
    }
    PyArrayObject* g_c = PyArray_GETCONTIGUOUS(%(g)s);
    Py_XDECREF(%(out)s);
    %(out)s = (PyArrayObject*) PyArray_ZEROS(1, PyArray_DIMS(maps_c), NPY_FLOAT32, 0);
    double* totals = (double*) calloc(channels > 0 ? channels : 1, sizeof(double));
    if (g_c == NULL || %(out)s == NULL || totals == NULL) {
        Py_XDECREF(g_c); Py_DECREF(maps_c); free(totals);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        %(fail)s
    }
    const float* __restrict__ grad = (const float*) PyArray_DATA(g_c);
    for (npy_intp start = 0; start < values; start += BF16_BLOCK) {
        const npy_intp stop = start + BF16_BLOCK < values ? start + BF16_BLOCK : values;
        npy_intp c = 0;
        for (; c + 4 <= channels; c += 4) {            /* four channels per pass over the block of g */
            const npy_uint16* __restrict__ r0 = x + c * values;
            const npy_uint16* __restrict__ r1 = r0 + values;
            const npy_uint16* __restrict__ r2 = r1 + values;
            const npy_uint16* __restrict__ r3 = r2 + values;
            float l0[16] = {0}, l1[16] = {0}, l2[16] = {0}, l3[16] = {0};
            npy_intp n = start;
            for (; n + 16 <= stop; n += 16)
                for (int j = 0; j < 16; ++j) {
                    const float gj = grad[n + j];
                    l0[j] += bf16_value(r0[n + j]) * gj;
                    l1[j] += bf16_value(r1[n + j]) * gj;
                    l2[j] += bf16_value(r2[n + j]) * gj;
                    l3[j] += bf16_value(r3[n + j]) * gj;
                }
            float p0 = 0, p1 = 0, p2 = 0, p3 = 0;
            for (; n < stop; ++n) {
                p0 += bf16_value(r0[n]) * grad[n];
                p1 += bf16_value(r1[n]) * grad[n];
                p2 += bf16_value(r2[n]) * grad[n];
                p3 += bf16_value(r3[n]) * grad[n];
            }
            for (int j = 0; j < 16; ++j) { p0 += l0[j]; p1 += l1[j]; p2 += l2[j]; p3 += l3[j]; }
            totals[c] += p0; totals[c + 1] += p1; totals[c + 2] += p2; totals[c + 3] += p3;
        }
        for (; c < channels; ++c) {
            const npy_uint16* __restrict__ row = x + c * values;
            float lanes[16] = {0};
            npy_intp n = start;
            for (; n + 16 <= stop; n += 16)
                for (int j = 0; j < 16; ++j) lanes[j] += bf16_value(row[n + j]) * grad[n + j];
            float partial = 0;
            for (; n < stop; ++n) partial += bf16_value(row[n]) * grad[n];
            for (int j = 0; j < 16; ++j) partial += lanes[j];
            totals[c] += partial;
        }
    }
    float* result = (float*) PyArray_DATA(%(out)s);
    for (npy_intp c = 0; c < channels; ++c) result[c] = (float) totals[c];
    free(totals);
    Py_DECREF(g_c);
    Py_DECREF(maps_c);
"""

    def make_node(self, maps, g):
        maps, g = T.as_tensor_variable(maps), T.cast(T.as_tensor_variable(g), "float32")
        if maps.dtype != "uint16" or g.ndim != maps.ndim - 1:
            raise TypeError(f"Projection takes uint16 maps (C, ...) and g (...), got {maps.type} and {g.type}")
        return theano.Apply(self, [maps, g], [T.fvector()])

    def perform(self, node, inputs, outputs):
        maps, g = inputs
        if maps.shape[1:] != g.shape:
            raise ValueError(f"Projection: maps {maps.shape} and g {g.shape} do not match")
        outputs[0][0] = np.tensordot(expand(maps), g, axes=g.ndim).astype(np.float32)

    def infer_shape(self, node, shapes):
        return [shapes[0][:1]]

    def grad(self, inputs, output_grads):
        return [theano.gradient.grad_undefined(self, i, x, "no second derivatives") for i, x in enumerate(inputs)]


def weighted_sum(w, maps):
    """Symbolic ``sum_c w[c] * maps[c]`` for float32 maps (a tensor product) or bfloat16 ones (:class:`WeightedSum`).

    Parameters
    ----------
    w : symbolic vector, (C,)
    maps : symbolic tensor, (C, ...), float32 or uint16 (bfloat16 bits, :func:`compact`)

    Returns
    -------
    symbolic tensor, (...), float32
    """
    if maps.dtype == "uint16":
        return WeightedSum()(w, maps)
    return T.tensordot(w, maps, axes=1)
