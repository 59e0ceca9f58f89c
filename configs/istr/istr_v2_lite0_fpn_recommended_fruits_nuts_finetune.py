# mmembed's recommended ISTR for small data (docs/istr.md#small-data-keys),
# fine-tuned from ImageNet Lite0 on fruits_nuts: ISTR v2 with ReLU, the
# learned-embedding query start and matching on classes and boxes.
_base_ = [
    './istr_v2_lite0_fpn_fruits_nuts_finetune.py',
    '../_base_/models/istr_small_data_keys.py',
]
model = dict(
    rpn_head={{_base_.istr_embedding_start_rpn_head}},
    roi_head=dict(bbox_head={{_base_.istr_relu_bbox_head}}),
    train_cfg={{_base_.istr_box_matching_train_cfg}})
