# Copyright (c) mmembed authors. All rights reserved.
from .lovasz_hinge_loss import LovaszHingeLoss, lovasz_hinge, probs_to_logits
from .region_dice_loss import RegionDiceLoss
from .smooth_embedding_loss import SmoothEmbeddingLoss, smooth_embedding_loss

__all__ = [
    'LovaszHingeLoss', 'lovasz_hinge', 'probs_to_logits', 'RegionDiceLoss',
    'SmoothEmbeddingLoss', 'smooth_embedding_loss'
]
