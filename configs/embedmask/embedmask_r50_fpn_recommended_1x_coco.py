# EmbedMask R-50-FPN 1x on COCO, mmembed's recommended variant.
# mmembed's recommended EmbedMask (configs/_base_/models/
# embedmask_recommended_keys.py): the paper model of embedmask_r50_fpn_1x_coco.py
# with the Lovász mask loss weighted 2.0 and masks pasted from upsampled
# logits; measured in docs/embedmask.md ("The recommended configuration").
_base_ = [
    './embedmask_r50_fpn_1x_coco.py',
    '../_base_/models/embedmask_recommended_keys.py',
]
model = dict(
    mask_head={{_base_.embedmask_recommended_mask_head}},
    test_cfg={{_base_.embedmask_recommended_test_cfg}})
