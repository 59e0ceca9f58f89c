# Candidate (docs/istr.md#small-data-keys): the dynamic-fusion ISTR whose
# conv branch predicts per-pixel mask logits that the DCT codec (v2's
# 256-d) encodes into the code (mask_code_head='dense'), instead of v2's
# global 7 x 7 FC regressing the 256 numbers.
_base_ = './istr_v2_lite0_fpn_recommended_dynamic_fusion_fruits_nuts_finetune.py'
model = dict(
    roi_head=dict(bbox_head={{_base_.istr_dense_code_bbox_head}}))
