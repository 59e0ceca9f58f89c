# Copyright (c) mmembed authors. All rights reserved.
from .dct_codec import DCTMaskCodec, dct_basis, dct_matrix, zigzag_order
from .pca_codec import PCAMaskCodec, load_pca_file, soft_mask_logits

__all__ = [
    'DCTMaskCodec', 'PCAMaskCodec', 'dct_basis', 'dct_matrix', 'zigzag_order',
    'load_pca_file', 'soft_mask_logits'
]
