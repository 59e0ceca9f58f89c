# Copyright (c) mmembed authors. All rights reserved.
"""Whitened PCA mask codec of ISTR v1 (logit space, random soft targets).

Shape shorthand: N masks, S x S mask size, F = S * S features, D code length.
"""
import logging
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmdet.registry import TASK_UTILS
from mmengine.logging import print_log
from torch import Tensor, nn

from .dct_codec import check_codes, check_masks, dct_basis


def soft_mask_logits(masks: Tensor,
                     value_range: Tuple[float, float] = (0.01, 0.05),
                     random: bool = True,
                     generator: Optional[torch.Generator] = None) -> Tensor:
    """Inverse sigmoid of masks pushed away from 0 and 1 (ISTR v1).

    ISTR ``MaskEncoding.py::PCAMaskEncoding.inverse_sigmoid`` draws, per
    pixel, ``r ~ U(0, hi)`` clipped below at ``lo`` and maps pixels ``> r``
    to ``1 - r`` and the rest to ``r`` before ``logit``: a random label
    smoothing that keeps the logits finite (|logit| <= log((1 - lo) / lo))
    and makes the codes of one mask vary slightly between calls.

    Args:
        masks: (..., F) float in [0, 1].
        value_range: ``(lo, hi)``: 0.01 and 0.05 in ISTR.
        random: False uses ``r = lo`` everywhere (deterministic).
        generator: the random source (seed it for reproducible targets).

    Returns:
        (..., F) float logits.
    """
    low, high = value_range
    if random:
        noise = torch.rand(
            masks.shape, generator=generator, device=masks.device,
            dtype=masks.dtype if masks.is_floating_point() else torch.float32)
        soft = (noise * high).clamp(min=low)
    else:
        soft = masks.new_full(masks.shape, low, dtype=torch.float32)
    probs = torch.where(masks > soft, 1 - soft, soft)
    return torch.log(probs / (1 - probs))


def load_pca_file(path: str) -> Dict[str, np.ndarray]:
    """Read a fitted codec: ``components`` (D, F), ``explained_variances``
    (D,), ``means`` (F,).

    Reads what ``tools/misc/fit_mask_codec.py`` writes and the official ISTR
    file (``components_c`` (1, D, F), ``explained_variance_c`` (1, D),
    ``mean_c`` (1, F), e.g. ``coco_2017_train_class_agnosticTrue_whitenTrue_
    sigmoidTrue_60_siz28.npz``).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'PCA mask codec file {path!r} does not exist; fit one with '
            '`python tools/misc/fit_mask_codec.py ANN_JSON --out '
            f'{path}` or use DCTMaskCodec, which needs no fitting')
    with np.load(path) as data:
        if 'components' in data:
            return dict(components=data['components'],
                        explained_variances=data['explained_variances'],
                        means=data['means'])
        if 'components_c' in data:  # official ISTR LME file
            return dict(components=data['components_c'][0],
                        explained_variances=data['explained_variance_c'][0],
                        means=data['mean_c'][0])
        raise KeyError(f'{path}: no `components` (mmembed) or '
                       f'`components_c` (official ISTR) array; keys '
                       f'{sorted(data.keys())}')


@TASK_UTILS.register_module()
class PCAMaskCodec(nn.Module):
    """ISTR v1 mask embedding: whitened, class-agnostic PCA of mask logits.

    ``encode``: soft logits (:func:`soft_mask_logits`), minus ``means``,
    projected on ``components``, divided by ``sqrt(explained_variances)``.
    ``decode``: ``sigmoid(codes @ (components * sqrt(var)) + means)``.
    Follows ``hujiecpp/ISTR projects/ISTR/istr/MaskEncoding.py`` (v1,
    ``@967c901``); ``specs/methods.md`` 3.1.

    The three arrays are persistent buffers, so checkpoints carry them and a
    trained model needs no side file. ``codec_file`` is read by
    :meth:`init_weights` (called by the runner before training, not when a
    checkpoint is loaded for testing). Until then the buffers hold a
    placeholder (the first D zig-zag DCT basis images, unit variances, zero
    mean: a valid codec, so an unfitted model still runs).

    Args:
        code_dim: D (60 in ISTR v1).
        mask_size: S (28).
        codec_file: ``.npz`` from ``tools/misc/fit_mask_codec.py`` or the
            official ISTR file; None keeps the placeholder (with a warning at
            :meth:`init_weights`).
        random_soft_targets: ISTR's random label smoothing in
            :meth:`encode` (training targets); False uses ``value_range[0]``.
        value_range: ``(lo, hi)`` of that smoothing.
    """

    def __init__(self,
                 code_dim: int = 60,
                 mask_size: int = 28,
                 codec_file: Optional[str] = None,
                 random_soft_targets: bool = True,
                 value_range: Tuple[float, float] = (0.01, 0.05)) -> None:
        super().__init__()
        if not 0 < value_range[0] <= value_range[1] < 0.5:
            raise ValueError('value_range must be 0 < lo <= hi < 0.5, got '
                             f'{value_range}')
        self.code_dim = code_dim
        self.mask_size = mask_size
        self.codec_file = codec_file
        self.random_soft_targets = random_soft_targets
        self.value_range = tuple(value_range)
        self.register_buffer('components',
                             dct_basis(mask_size, code_dim).float())
        self.register_buffer('explained_variances', torch.ones(code_dim))
        self.register_buffer('means', torch.zeros(mask_size * mask_size))

    def init_weights(self) -> None:
        """Load ``codec_file`` into the buffers (see the class docstring)."""
        if self.codec_file is None:
            print_log(
                'PCAMaskCodec: no codec_file, the codec keeps its DCT '
                'placeholder until a checkpoint is loaded; fit one with '
                'tools/misc/fit_mask_codec.py', logger='current',
                level=logging.WARNING)
            return
        self.load_arrays(**load_pca_file(self.codec_file))

    def load_arrays(self, components: np.ndarray,
                    explained_variances: np.ndarray,
                    means: np.ndarray) -> None:
        """Copy fitted arrays ((D, F), (D,), (F,)) into the buffers."""
        feats = self.mask_size * self.mask_size
        shapes = (tuple(np.shape(components)),
                  tuple(np.shape(explained_variances)), tuple(np.shape(means)))
        if shapes != ((self.code_dim, feats), (self.code_dim, ), (feats, )):
            raise ValueError(
                f'PCAMaskCodec(code_dim={self.code_dim}, mask_size='
                f'{self.mask_size}) needs components ({self.code_dim}, '
                f'{feats}), explained_variances ({self.code_dim},), means '
                f'({feats},); got {shapes}. Refit with --dim/--mask-size or '
                'change the codec config')
        if not np.all(np.asarray(explained_variances) > 0):
            raise ValueError('explained_variances must all be > 0 (a '
                             'whitened codec divides by their roots)')
        with torch.no_grad():
            self.components.copy_(torch.as_tensor(components))
            self.explained_variances.copy_(
                torch.as_tensor(explained_variances))
            self.means.copy_(torch.as_tensor(means))

    def encode(self,
               masks: Tensor,
               generator: Optional[torch.Generator] = None,
               random: Optional[bool] = None) -> Tensor:
        """Whitened codes of masks.

        Args:
            masks: (N, S, S) float in [0, 1] (binary GT masks in their box).
            generator: random source of the soft targets (None: global).
            random: overrides ``random_soft_targets`` for this call (ISTR's
                matching can use the deterministic encoding, see
                ``ISTRRoIHead(match_random_soft_targets=...)``).

        Returns:
            (N, D) float codes (about unit variance per dimension).
        """
        check_masks(masks, self.mask_size, type(self).__name__)
        logits = soft_mask_logits(
            masks.flatten(1).float(), self.value_range,
            self.random_soft_targets if random is None else random,
            generator)
        codes = (logits - self.means) @ self.components.t()
        return codes / self.explained_variances.sqrt()

    def decode_logits(self, codes: Tensor) -> Tensor:
        """(N, D) codes -> (N, S, S) mask logits."""
        check_codes(codes, self.code_dim, type(self).__name__)
        scaled = self.components * self.explained_variances.sqrt()[:, None]
        logits = codes @ scaled + self.means
        return logits.view(-1, self.mask_size, self.mask_size)

    def decode(self, codes: Tensor) -> Tensor:
        """(N, D) codes -> (N, S, S) mask probabilities in (0, 1)."""
        return self.decode_logits(codes).sigmoid()

    def decode_for_loss(self, codes: Tensor) -> Tensor:
        """What the training losses on decoded masks read: the same
        probabilities as :meth:`decode` (the sigmoid has a gradient
        everywhere)."""
        return self.decode(codes)
