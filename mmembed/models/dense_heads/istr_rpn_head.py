# Copyright (c) mmembed authors. All rights reserved.
"""ISTR's query initialisation: image-conditioned query features."""
from typing import List, Optional, Sequence

import torch
from mmdet.models.dense_heads import EmbeddingRPNHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList
from torch import Tensor

from ...utils.arg_checks import check_init_args


@MODELS.register_module()
# mmdet's TwoStageDetector passes these; EmbeddingRPNHead drops them
@check_init_args(extra=('num_classes', 'train_cfg', 'test_cfg'))
class ISTREmbeddingRPNHead(EmbeddingRPNHead):
    """:class:`EmbeddingRPNHead` whose query features depend on the image.

    ISTR v1 (``hujiecpp/ISTR projects/ISTR/istr/inseg.py::ImgFeatExtractor``,
    ``specs/methods.md`` 3.1): the global average pools of P2..P5 are
    *summed* (C) and added to a learned embedding per query
    (``pos_embeddings``, here mmdet's ``init_proposal_features``), so every
    image starts from its own features; Sparse R-CNN uses the embedding
    alone. Boxes are mmdet's: learned normalised cxcywh, initialised to the
    whole image, scaled by each image's unpadded size.

    Args:
        num_proposals: queries (ISTR: 300).
        proposal_feature_channel: C.
        feat_levels: indices of the neck outputs pooled (ISTR: P2..P5 =
            the four outputs of a 4-level FPN); None pools all.
        image_feat_scale: the pooled image vector is multiplied by this
            before it is added to the learned embeddings: 1.0 is ISTR's
            start; 0.0 is Sparse R-CNN's (the learned embeddings alone);
            values between damp the image part, which at the start is
            nearly the same vector for every photo and larger than the
            embeddings, so it makes the queries alike
            (docs/istr.md#why-istr-trails-queryinst-here). mmembed's key,
            not in the official code.
    """

    def __init__(self,
                 num_proposals: int = 300,
                 proposal_feature_channel: int = 256,
                 feat_levels: Optional[Sequence[int]] = (0, 1, 2, 3),
                 image_feat_scale: float = 1.0,
                 **kwargs) -> None:
        if not image_feat_scale >= 0:
            raise ValueError('image_feat_scale must be a number >= 0, got '
                             f'{image_feat_scale!r}')
        self.feat_levels = None if feat_levels is None else tuple(feat_levels)
        self.image_feat_scale = float(image_feat_scale)
        super().__init__(
            num_proposals=num_proposals,
            proposal_feature_channel=proposal_feature_channel,
            **kwargs)

    def image_features(self, x: Sequence[Tensor]) -> Tensor:
        """(B, C): sum over the pooled levels of each level's spatial mean.

        Args:
            x: neck outputs, each (B, C, H_l, W_l).
        """
        levels = range(len(x)) if self.feat_levels is None \
            else self.feat_levels
        if max(levels) >= len(x):
            raise ValueError(f'feat_levels {self.feat_levels} need at least '
                             f'{max(levels) + 1} neck outputs, got {len(x)}')
        for level in levels:
            if x[level].shape[1] != self.proposal_feature_channel:
                raise ValueError(
                    f'neck output {level} has {x[level].shape[1]} channels, '
                    f'proposal_feature_channel is '
                    f'{self.proposal_feature_channel}')
        return torch.stack([x[level].mean((2, 3)) for level in levels]).sum(0)

    def _decode_init_proposals(self, x: List[Tensor],
                               batch_data_samples: SampleList) -> InstanceList:
        """mmdet's proposals with ``features`` (num_proposals, C) = learned
        embedding + ``image_feat_scale`` x this image's pooled features."""
        results_list = super()._decode_init_proposals(x, batch_data_samples)
        if self.image_feat_scale == 0:  # Sparse R-CNN's start
            return results_list
        img_feats = self.image_features(x) * self.image_feat_scale
        for img_id, results in enumerate(results_list):
            results.features = results.features + img_feats[img_id][None]
        return results_list
