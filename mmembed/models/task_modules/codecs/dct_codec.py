# Copyright (c) mmembed authors. All rights reserved.
"""DCT mask codec: the lowest zig-zag frequencies of the 2-D DCT-II.

Shape shorthand: N masks, S x S mask size, D code length (``code_dim``).
"""
import math
from typing import Optional

import torch
from mmdet.registry import TASK_UTILS
from torch import Tensor, nn


def dct_matrix(size: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """(size, size) orthonormal DCT-II matrix ``C``: row ``u`` is frequency
    ``u``, so ``C @ x`` is the DCT of a vector and ``C.T @ X`` inverts it."""
    n = torch.arange(size, dtype=dtype)
    basis = torch.cos(math.pi * (n[None, :] + 0.5) * n[:, None] / size)
    basis[0] *= math.sqrt(1.0 / size)
    basis[1:] *= math.sqrt(2.0 / size)
    return basis


def zigzag_order(size: int) -> Tensor:
    """(size * size,) int64 flat indices ``u * size + v`` of a size x size
    frequency grid in JPEG zig-zag order (by anti-diagonal ``u + v``,
    alternating direction), so a prefix holds the lowest frequencies."""
    order = []
    for diag in range(2 * size - 1):
        rows = range(max(0, diag - size + 1), min(diag, size - 1) + 1)
        # even diagonals run bottom-left to top-right (u decreasing), as JPEG
        rows = reversed(rows) if diag % 2 == 0 else rows
        order.extend(u * size + (diag - u) for u in rows)
    return torch.tensor(order, dtype=torch.long)


def dct_basis(size: int, code_dim: int) -> Tensor:
    """(code_dim, size * size) float64 orthonormal rows: the 2-D DCT basis
    images of the first ``code_dim`` zig-zag frequencies, flattened."""
    if not 1 <= code_dim <= size * size:
        raise ValueError(f'code_dim must be in [1, {size * size}] for '
                         f'{size}x{size} masks, got {code_dim}')
    one_d = dct_matrix(size)
    full = torch.einsum('ux,vy->uvxy', one_d, one_d).reshape(size * size, -1)
    return full[zigzag_order(size)[:code_dim]]


def check_masks(masks: Tensor, mask_size: int, who: str) -> None:
    """Raise when ``masks`` is not (N, mask_size, mask_size)."""
    if masks.dim() != 3 or tuple(masks.shape[1:]) != (mask_size, mask_size):
        raise ValueError(f'{who}.encode expects masks (N, {mask_size}, '
                         f'{mask_size}), got {tuple(masks.shape)}; crop '
                         'GT masks to their boxes at the codec mask_size')


def check_codes(codes: Tensor, code_dim: int, who: str) -> None:
    """Raise when ``codes`` is not (N, code_dim)."""
    if codes.dim() != 2 or codes.shape[1] != code_dim:
        raise ValueError(f'{who}.decode expects codes (N, {code_dim}), '
                         f'got {tuple(codes.shape)}')


@TASK_UTILS.register_module()
class DCTMaskCodec(nn.Module):
    """Masks <-> their lowest ``code_dim`` 2-D DCT coefficients (zig-zag
    order), as in DCT-Mask and ISTR v2's ``DCT`` encoder; nothing to fit.

    The basis is orthonormal, so with ``code_dim = mask_size ** 2`` decode
    inverts encode exactly. Codes live in mask-value space (not logits);
    :meth:`decode` clamps the reconstruction to [0, 1] to make it a
    probability, :meth:`decode_for_loss` (training) does not.

    The basis is a non-persistent buffer: it follows ``.to(device)`` but is
    rebuilt from the two integers, not stored in checkpoints.

    Args:
        code_dim: D, number of kept frequencies.
        mask_size: S, masks are S x S (cropped to their box).
    """

    def __init__(self, code_dim: int = 256, mask_size: int = 28) -> None:
        super().__init__()
        self.code_dim = code_dim
        self.mask_size = mask_size
        self.register_buffer(
            'basis', dct_basis(mask_size, code_dim).float(), persistent=False)

    def encode(self,
               masks: Tensor,
               generator: Optional[torch.Generator] = None,
               random: Optional[bool] = None) -> Tensor:
        """Codes of masks.

        Args:
            masks: (N, S, S) float in [0, 1] (binary GT masks in their box).
            generator, random: unused (the DCT code is deterministic);
                accepted so every codec has the same signature.

        Returns:
            (N, D) float codes.
        """
        check_masks(masks, self.mask_size, type(self).__name__)
        return masks.flatten(1).to(self.basis.dtype) @ self.basis.t()

    def decode_for_loss(self, codes: Tensor) -> Tensor:
        """(N, D) codes -> (N, S, S) reconstructions, not clamped.

        The training losses on decoded masks (ISTR's dice) read this: a
        clamp would give the pixels outside [0, 1] no gradient, and the
        official v2 (``hujiecpp/ISTR@1dac079``) does not clamp there.
        """
        check_codes(codes, self.code_dim, type(self).__name__)
        values = codes @ self.basis
        return values.view(-1, self.mask_size, self.mask_size)

    def decode(self, codes: Tensor) -> Tensor:
        """(N, D) codes -> (N, S, S) mask probabilities in [0, 1] (the
        reconstruction of :meth:`decode_for_loss`, clamped)."""
        return self.decode_for_loss(codes).clamp(0, 1)
