# Ablation of the fruits_nuts learning check (docs/istr.md#why-istr-trails-
# queryinst-here): ISTR with Sparse R-CNN's query start (mmdet's
# EmbeddingRPNHead: a learned feature per query, no pooled image features)
# and without the mask-code term in the matching cost (boxes and classes
# match as in QueryInst: istr_small_data_keys.py's box matching); masks are
# still ISTR's codes and losses.
_base_ = [
    './istr_r18_fpn_fruits_nuts.py',
    '../_base_/models/istr_small_data_keys.py',
]
model = dict(
    rpn_head=dict(
        _delete_=True,
        type='EmbeddingRPNHead',
        num_proposals={{_base_.model.rpn_head.num_proposals}},
        proposal_feature_channel={{_base_.model.rpn_head.proposal_feature_channel}}),
    train_cfg={{_base_.istr_box_matching_train_cfg}})
