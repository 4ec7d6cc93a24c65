"""DeepGaze I's log-density of a new image as a PyTorch pipeline: the peer of ``ReadoutDensity.log_density_of``.

A benchmark-only peer (``pip install torch``; CPU), written as one would write it in PyTorch: the uint8 image as a
tensor, BGR, block mean by ``avg_pool2d``, minus Caffe's mean; the AlexNet trunk of the same caffemodel with
``F.conv2d`` (``full`` padding: ``kernel - 1`` on each side), ``F.local_response_norm`` and ``F.max_pool2d``
(Caffe's ceil rounding); the readout of the same :class:`repro.model.DeepGazeI` (weighted sums, interpolation
to the grid's cells and blur as matrices, softmax over the cells in float64, each cell's mass spread over its
pixels). What is not compute, where a layer's units sit (the grid's interpolation matrices and the cell of every
pixel), it takes from :mod:`repro.resampling`, as a PyTorch user of these weights would have to.

    peer = TorchDeepGaze(network, readout, mean, downsample)   # repro.network.Network, repro.model.DeepGazeI
    log_density = peer.log_density_of(image)                   # (H, W) float64, like ours
"""
import numpy as np
import torch
import torch.nn.functional as F

from repro.network import conv_window, pool_window

__all__ = ["TorchDeepGaze", "gaussian_rows"]


def gaussian_rows(sigma, n, smallest=40.0):
    """``(n, n)`` Gaussian weights exp(-(i-j)^2 / 2 sigma^2), rows summing to one, those below exp(-smallest) 0
    (as :func:`repro.model.gaussian_rows`)."""
    index = torch.arange(n, dtype=torch.float32)
    exponent = (index[:, None] - index[None, :]) ** 2 / (2 * sigma ** 2)
    weights = torch.where(exponent < smallest, torch.exp(-exponent), torch.zeros(()))
    return weights / weights.sum(dim=1, keepdim=True)


class TorchDeepGaze:
    """The trunk of ``network`` (a :class:`repro.network.Network`, Caffe AlexNet) and the readout ``readout`` (a
    :class:`repro.model.DeepGazeI`) in PyTorch, with a uniform prior."""

    def __init__(self, network, readout, mean=(104.0, 117.0, 123.0), downsample=2):
        self.readout, self.downsample = readout, int(downsample)
        self.mean = torch.tensor(np.asarray(mean, np.float32)).view(1, 3, 1, 1)
        self.steps = []                                 # (layer name, function of the bottom tensor)
        for layer in network.model.layers:
            if layer.type == "Input":
                continue
            if len(layer.bottoms) != 1:
                raise ValueError(f"{layer.name}: the peer runs single-input layers only")
            self.steps.append((layer.name, self._step(layer, network)))
            if layer.name == max(readout.layers, key=network.layer_names.index):
                break
        self.effective = torch.tensor(np.asarray(readout.w * readout.feature_scales, np.float32))
        self.sigma = torch.tensor(readout.sigma, dtype=torch.float32)

    @staticmethod
    def _step(layer, network):
        p = layer.params
        if layer.type == "Convolution":
            g = conv_window(layer, network.padding)
            blobs = network.model.blobs[layer.name]
            weight = torch.tensor(np.asarray(blobs[0], np.float32))
            bias = torch.tensor(np.asarray(blobs[1], np.float32)) if len(blobs) > 1 else None
            return lambda x: F.conv2d(x, weight, bias, stride=g["stride"], padding=g["pad"], dilation=g["dilation"],
                                      groups=p["group"])
        if layer.type == "ReLU":
            return F.relu
        if layer.type == "LRN":
            return lambda x: F.local_response_norm(x, p["local_size"], p["alpha"], p["beta"], p["k"])
        if layer.type == "Pooling" and p["pool"] == "MAX" and not p["global_pooling"]:
            g = pool_window(layer)
            if g["pad"] != (0, 0) or not g["ceil"]:
                raise ValueError(f"{layer.name}: the peer pools as Caffe without padding only")
            return lambda x: F.max_pool2d(x, g["kernel"], g["stride"], ceil_mode=True)
        raise ValueError(f"{layer.name}: layer type {layer.type} not in the peer")

    @torch.inference_mode()
    def features(self, image):
        """``[(C_l, h_l, w_l)]`` of the readout's layers for an ``(H, W, 3)`` uint8 RGB image (torch tensors)."""
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).flip(0)[None].float()   # (1, 3, H, W) BGR
        if self.downsample > 1:
            x = F.avg_pool2d(x, self.downsample)
        x = x - self.mean
        outputs = {}
        for name, step in self.steps:
            x = step(x)
            outputs[name] = x
        return [outputs[layer][0] for layer in self.readout.layers]

    @torch.inference_mode()
    def log_density_of(self, image):
        """Log-density ``(H, W)`` float64 of a new image under the readout, uniform prior."""
        maps = self.features(image)
        grid = self.readout.grid(np.shape(image)[:2], maps)
        blur_rows, blur_cols = gaussian_rows(self.sigma, grid.shape[0]), gaussian_rows(self.sigma, grid.shape[1])
        saliency, start = 0, 0
        for m, rows, cols in zip(maps, grid.rows, grid.cols):
            layer_sum = torch.tensordot(self.effective[start:start + m.shape[0]], m, dims=1)        # (h_l, w_l)
            saliency = saliency + (blur_rows @ torch.from_numpy(rows)) @ layer_sum @ (blur_cols @ torch.from_numpy(cols)).T
            start += m.shape[0]
        log_pixels = torch.from_numpy(grid.log_pixels)
        output = saliency.double() + self.readout.alpha * log_pixels
        log_density = torch.log_softmax(output.flatten(), 0).view(output.shape) - log_pixels
        return log_density[torch.from_numpy(grid.row_cell)][:, torch.from_numpy(grid.col_cell)].numpy()
