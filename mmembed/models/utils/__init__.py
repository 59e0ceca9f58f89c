# Copyright (c) mmembed authors. All rights reserved.
from .embedding_kernel import (embedding_logprob, embedding_logprob_pairs,
                               logprob_to_logit)
from .mask_ops import (candidate_out_regions, paste_dense_logits,
                       paste_ragged_logits, rescale_gt_masks, upsampled_size)
from .ragged_ops import (RaggedGrid, box_cell_masks, boxes_to_cells,
                         chunk_ranges, even_chunks, ragged_grid,
                         region_areas, region_masks)

__all__ = [
    'embedding_logprob', 'embedding_logprob_pairs', 'logprob_to_logit',
    'candidate_out_regions',
    'paste_dense_logits', 'paste_ragged_logits', 'rescale_gt_masks',
    'upsampled_size', 'RaggedGrid', 'boxes_to_cells', 'chunk_ranges',
    'even_chunks', 'ragged_grid', 'region_areas', 'region_masks',
    'box_cell_masks'
]
from .sample_selection import (SAMPLING_MODES, ProposalSamples,  # noqa: E402
                               select_proposal_samples)

__all__ += ['SAMPLING_MODES', 'ProposalSamples', 'select_proposal_samples']
from .mask_ops import clean_instance_masks, paste_box_masks  # noqa: E402

__all__ += ['clean_instance_masks', 'paste_box_masks']
from .roi_ops import extract_roi_feats_traceable, roi_align_dtype  # noqa

__all__ += ['extract_roi_feats_traceable', 'roi_align_dtype']
from .result_checks import remove_non_finite  # noqa: E402

__all__ += ['remove_non_finite']
from .level_fusion import sum_upsampled  # noqa: E402

__all__ += ['sum_upsampled']
from .separable_roi_align import (SeparableRoIAlign,  # noqa: E402
                                  separable_roi_align)

__all__ += ['SeparableRoIAlign', 'separable_roi_align']
