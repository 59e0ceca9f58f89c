# The keys that switch an ISTR config from the official v1 to the official
# v2 (hujiecpp/ISTR@1dac079, specs/methods.md 3.0 / 3.5): the mask code is
# predicted by a conv head on 28 x 28 RoI features of each stage's predicted
# (detached) boxes; the code and dice targets are the GT masks cropped by
# those boxes; a 112 x 112 codec with 256 dims; code loss SmoothL1 weight 1,
# dice weight 5, mask-code matching cost weight 1; at test the class logits
# are averaged over stages 2-5 and masks are pasted at 0.45.
# A config uses them with
#   _base_ = [<v1 config>, '<...>/_base_/models/istr_v2_keys.py']
#   model = dict(
#       roi_head=dict(
#           bbox_head={{_base_.istr_v2_bbox_head}},
#           code_roi_extractor={{_base_.istr_v2_code_roi_extractor}},
#           mask_target_boxes='pred',
#           # MASK_SIZE 112, MASK_FEAT_DIM 256, with its own codec
#           mask_codec=dict(code_dim=256, mask_size=112, ...)),
#       train_cfg={{_base_.istr_v2_train_cfg}},
#       test_cfg={{_base_.istr_v2_test_cfg}})
# (this file defines no `model`, so it can be a second base).
istr_v2_bbox_head = dict(
    mask_branch='conv',  # RCNNHead.mask_module
    mask_roi_size=28,
    # SmoothL1 (beta 1) summed over the codes / num_boxes / D, weight 1
    loss_mask_code=dict(
        _delete_=True, type='SmoothL1Loss', beta=1.0, reduction='mean',
        loss_weight=1.0),
    loss_mask_dice=dict(loss_weight=5.0))  # MASK_WEIGHT 5
# the mask pooler: ROIAlignV2 28 x 28, sampling ratio 2, on the maps the
# box pooler reads (P2-P5; ISTRRoIHead copies its out_channels and strides).
# SeparableRoIExtractor: mmdet's SingleRoIExtractor with the same RoIAlign
# values computed by batched matmuls on the CPU (mmcv's CPU kernel is
# single-threaded and 28 x 28 is 4x QueryInst's 14 x 14); mmcv's kernel on
# CUDA and in exports
istr_v2_code_roi_extractor = dict(
    type='SeparableRoIExtractor',
    roi_layer=dict(
        type='RoIAlign', output_size=28, sampling_ratio=2, aligned=True))
istr_v2_stage_train_cfg = dict(
    assigner=dict(
        type='HungarianAssigner',
        match_costs=[
            dict(type='FocalLossCost', weight=2.0, eps=1e-8),
            dict(type='BBoxL1Cost', weight=5.0, box_format='xyxy'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0),
            dict(type='MaskCodeCost', weight=1.0),  # FEAT_WEIGHT 1
        ]),
    sampler=dict(type='PseudoSampler'),
    pos_weight=1)
istr_v2_train_cfg = dict(rcnn=[istr_v2_stage_train_cfg] * 6)
istr_v2_test_cfg = dict(
    rcnn=dict(mask_thr_binary=0.45, cls_score_stages=(2, 3, 4, 5)))
