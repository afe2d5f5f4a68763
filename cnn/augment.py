"""Augmentation on whole uint8 batches, on the batch's device: no per-sample PIL transform."""

import torch
import torch.nn.functional as F


def augment(images, crop, flip, generator):
    """uint8 (B, C, H, W) -> a new batch: each image a random H x W window of itself zero-padded by `crop`
    pixels (torchvision's RandomCrop(size, padding=crop)), then, if `flip`, mirrored left-right with
    probability 1/2 (RandomHorizontalFlip). The generator lives on the images' device."""
    b, c, h, w = images.shape
    dev = images.device
    x = images
    if crop:
        padded = F.pad(x, (crop, crop, crop, crop))
        dy = torch.randint(0, 2 * crop + 1, (b, 1), generator=generator, device=dev)
        dx = torch.randint(0, 2 * crop + 1, (b, 1), generator=generator, device=dev)
        rows = (dy + torch.arange(h, device=dev))[:, None, :, None]  # (B, 1, H, 1)
        cols = (dx + torch.arange(w, device=dev))[:, None, None, :]  # (B, 1, 1, W)
        batch = torch.arange(b, device=dev)[:, None, None, None]
        x = padded[batch, torch.arange(c, device=dev)[None, :, None, None], rows, cols]  # (B, C, H, W)
    if flip:
        mirrored = torch.rand(b, generator=generator, device=dev) < 0.5
        x = torch.where(mirrored[:, None, None, None], x.flip(3), x)
    return x
