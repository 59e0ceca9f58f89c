# The learning-check model with the released-code (v3) behaviour, to compare
# paper and v3 training on the same data (tools/analysis_tools/learning_check.py
# --models embedmask embedmask_v3 condinst).
_base_ = [
    './embedmask_r18_fpn_fruits_nuts.py',
    '../_base_/models/embedmask_v3_keys.py'
]
model = dict(
    bbox_head={{_base_.embedmask_v3_bbox_head}},
    mask_head={{_base_.embedmask_v3_mask_head}},
    test_cfg={{_base_.embedmask_v3_test_cfg}})
