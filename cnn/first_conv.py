"""The first conv layer (one input channel) with a faster weight gradient on the CPU.

oneDNN's convolution backward is slow when the input has a single channel: for model A
it spent as long on conv1's 0.1 GFLOP of weight gradient as on conv2's 1.2 GFLOP.
Written as one matrix product over the k*k shifted copies of the image, the same
gradient takes a third of the time (benchmarks/throughput.py: +8% whole-step speed).
The forward pass and everything off the CPU stay with torch's own convolution.
"""

import torch
import torch.nn.functional as F
from torch import nn

CHUNK = 512  # images per piece of the shifted-copies matrix: bounds its memory at large batches and kernels


def shifted_copies(x, k):
    """x (B, 1, H, W) -> (k*k, B*H*W): row i*k+j is the zero-padded image shifted by (i, j)."""
    n, _, h, w = x.shape
    p = k // 2
    padded = F.pad(x, (p, p, p, p))[:, 0]
    return torch.stack([padded[:, i : i + h, j : j + w] for i in range(k) for j in range(k)]).view(k * k, -1)


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x)
        ctx.kernel = weight.shape[-1]
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        k, out_ch = ctx.kernel, grad.shape[1]
        per_pixel = grad.float().permute(0, 2, 3, 1)  # (B, H, W, C): a view when grad is channels_last
        grad_w = torch.zeros(k * k, out_ch, dtype=torch.float32)
        for start in range(0, len(x), CHUNK):
            rows = per_pixel[start : start + CHUNK].reshape(-1, out_ch)
            grad_w += shifted_copies(x[start : start + CHUNK].float(), k) @ rows
        grad_b = per_pixel.sum((0, 1, 2))
        return None, grad_w.t().reshape(out_ch, 1, k, k), grad_b, None


class FirstConv(nn.Conv2d):
    """nn.Conv2d(1, C, k, padding=k // 2): same parameters, same state dict, same function."""

    def forward(self, x):
        fast = (
            torch.is_grad_enabled()
            and x.device.type == "cpu"
            and not x.requires_grad
            and self.weight.requires_grad
            and self.bias is not None
        )
        if not fast:
            return super().forward(x)
        return _Conv.apply(x, self.weight, self.bias, self.padding)
