"""The first conv layer (one input channel) with a faster weight gradient on the CPU.

oneDNN's convolution backward is slow when the input has a single channel: for model A it
spent as long on conv1's weight gradient (15 MFLOP a batch) as on conv2's (116 MFLOP).
Written as one matrix product over the k*k shifted copies of the image, the same gradient
makes model A's whole training step 7-9% faster (3x3 kernels, 2 threads, batch 64; 10% at
batch 512). With one thread it breaks even or loses a little, with 7x7 kernels it loses 4%,
and 5x5 kernels or batches under 16 gain nothing sure, so it is used only where it won
(benchmarks/first_conv.py). The forward pass and everything off the CPU stay with torch.
"""

import torch
import torch.nn.functional as F
from torch import nn

CHUNK = 512  # images per piece of the shifted-copies matrix: bounds its memory at large batches
MIN_BATCH = 16


def measured_faster(kernel, batch, threads):
    """Where benchmarks/first_conv.py found this backward faster than torch's."""
    return kernel == 3 and threads > 1 and batch >= MIN_BATCH


def shifted_copies(x, k):
    """x (B, 1, H, W) -> (k*k, B*H*W): row i*k+j is the zero-padded image shifted by (i, j)."""
    _, _, h, w = x.shape
    p = k // 2
    padded = F.pad(x, (p, p, p, p))[:, 0]
    return torch.stack([padded[:, i : i + h, j : j + w] for i in range(k) for j in range(k)]).view(k * k, -1)


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x)
        ctx.kernel, ctx.dtype = weight.shape[-1], weight.dtype
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        k, out_ch, dtype = ctx.kernel, grad.shape[1], ctx.dtype
        grad_w = torch.zeros(k * k, out_ch, dtype=dtype, device=x.device)
        grad_b = torch.zeros(out_ch, dtype=dtype, device=x.device)
        for start in range(0, len(x), CHUNK):
            # (B, H, W, C): a view when grad is channels_last; bf16 grads are widened a chunk at a time
            per_pixel = grad[start : start + CHUNK].to(dtype).permute(0, 2, 3, 1).reshape(-1, out_ch)
            grad_w += shifted_copies(x[start : start + CHUNK].to(dtype), k) @ per_pixel
            grad_b += per_pixel.sum(0)
        grad_b = grad_b if ctx.needs_input_grad[2] else None
        return None, grad_w.t().reshape(out_ch, 1, k, k), grad_b, None


class FirstConv(nn.Conv2d):
    """nn.Conv2d(1, C, k, padding=k // 2): same parameters, same state dict, same function."""

    def __init__(self, in_channels, out_channels, kernel_size, padding):
        super().__init__(in_channels, out_channels, kernel_size, padding=padding)
        k = self.kernel_size[0]
        if in_channels != 1 or self.kernel_size != (k, k) or self.padding != (k // 2, k // 2):
            raise ValueError("FirstConv is the one-channel first layer: square kernel, same padding")

    def forward(self, x):
        fast = (
            measured_faster(self.kernel_size[0], len(x), torch.get_num_threads())
            and torch.is_grad_enabled()
            and x.device.type == "cpu"
            and not x.requires_grad
            and self.weight.requires_grad
        )
        if not fast:
            return super().forward(x)
        return _Conv.apply(x, self.weight, self.bias, self.padding)
