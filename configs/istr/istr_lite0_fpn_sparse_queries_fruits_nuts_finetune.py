# Fine-tune twin of istr_r18_fpn_sparse_queries_fruits_nuts.py (diagnostic):
# mmdet's EmbeddingRPNHead and box-only matching
# (istr_small_data_keys.py) on the fine-tune ISTR v1.
_base_ = [
    './istr_lite0_fpn_fruits_nuts_finetune.py',
    '../_base_/models/istr_small_data_keys.py',
]
model = dict(
    rpn_head=dict(
        _delete_=True,
        type='EmbeddingRPNHead',
        num_proposals={{_base_.model.rpn_head.num_proposals}},
        proposal_feature_channel={{_base_.model.rpn_head.proposal_feature_channel}}),
    train_cfg={{_base_.istr_box_matching_train_cfg}})
