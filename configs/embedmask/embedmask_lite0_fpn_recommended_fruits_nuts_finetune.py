# EmbedMask fine-tuned from ImageNet Lite0 on fruits_nuts (fine-tune learning
# check), mmembed's recommended variant.
# mmembed's recommended EmbedMask (configs/_base_/models/
# embedmask_recommended_keys.py): the paper model of embedmask_lite0_fpn_fruits_nuts_finetune.py
# with the Lovász mask loss weighted 2.0 and masks pasted from upsampled
# logits; measured in docs/embedmask.md ("The recommended configuration").
_base_ = [
    './embedmask_lite0_fpn_fruits_nuts_finetune.py',
    '../_base_/models/embedmask_recommended_keys.py',
]
model = dict(
    mask_head={{_base_.embedmask_recommended_mask_head}},
    test_cfg={{_base_.embedmask_recommended_test_cfg}})
