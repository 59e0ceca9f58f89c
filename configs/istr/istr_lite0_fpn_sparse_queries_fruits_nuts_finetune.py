# Fine-tune twin of istr_r18_fpn_sparse_queries_fruits_nuts.py (diagnostic)
_base_ = './istr_lite0_fpn_fruits_nuts_finetune.py'
box_only_matching = dict(
    assigner=dict(
        type='HungarianAssigner',
        match_costs=[
            dict(type='FocalLossCost', weight=2.0, eps=1e-8),
            dict(type='BBoxL1Cost', weight=5.0, box_format='xyxy'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0),
            dict(type='MaskCodeCost', weight=0.0),
        ]),
    sampler=dict(type='PseudoSampler'),
    pos_weight=1)
model = dict(
    rpn_head=dict(
        _delete_=True,
        type='EmbeddingRPNHead',
        num_proposals={{_base_.model.rpn_head.num_proposals}},
        proposal_feature_channel={{_base_.model.rpn_head.proposal_feature_channel}}),
    train_cfg=dict(rcnn=[box_only_matching] * 6))
