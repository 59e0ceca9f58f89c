# mmembed's keys for training ISTR on small data (none is in the official
# code; docs/istr.md#small-data-keys says what each one changes and what it
# was measured to do). Each is a piece a config merges in, e.g.
#   _base_ = [<ISTR config>, '<...>/_base_/models/istr_small_data_keys.py']
#   model = dict(roi_head=dict(bbox_head={{_base_.istr_relu_bbox_head}}))
# (this file defines no `model`, so it can be a second base).
#
# The activation: ReLU in the stage heads (FFN, DynamicConv, cls / reg /
# mask branches) as Sparse R-CNN and QueryInst, instead of ISTR's ELU. At
# the start most RoI bins are exactly zero (boxes reach outside the image);
# ELU passes gradient there (ELU'(0) = 1), ReLU does not.
istr_relu = dict(type='ReLU', inplace=True)
istr_relu_bbox_head = dict(
    fc_act_cfg=istr_relu,
    ffn_act_cfg=istr_relu,
    dynamic_conv_cfg=dict(act_cfg=istr_relu))
# The query start: the learned embeddings alone (Sparse R-CNN's start); the
# pooled image vector, which is nearly the same for every photo early on,
# no longer makes the queries alike. A value in (0, 1) damps it instead.
istr_embedding_start_rpn_head = dict(image_feat_scale=0.0)
# The mask-code matching cost switched off: queries are matched on classes
# and boxes (as QueryInst); codes are trained on the matched queries only,
# so the v2 conv branch runs on those alone (much cheaper). To switch it on
# later instead, set MaskCodeCost start_iter.
istr_box_matching_stage_cfg = dict(
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
istr_box_matching_train_cfg = dict(rcnn=[istr_box_matching_stage_cfg] * 6)
# One classification FC (Linear + LN + act) before the logits, as Sparse
# R-CNN and QueryInst, instead of ISTR's three: on small data ISTR's class
# accuracy of matched queries lags QueryInst's (docs/istr.md).
istr_one_cls_fc_bbox_head = dict(num_cls_fcs=1)
# The conv mask branch (v2) reads the query too: a projection of the
# query's object feature is added to its RoI features, so the mask losses
# also train the queries and the stages that refine them, as QueryInst's
# dynamic mask head does (docs/istr.md#small-data-keys).
istr_query_fusion_bbox_head = dict(mask_query_fusion=True)
# The conv mask branch passes its RoI features through QueryInst's
# instance-interactive conv (per-query 1x1 convs generated from the object
# feature) before its own convs: the query shapes every position, not only
# an added offset as above.
istr_dynamic_fusion_bbox_head = dict(mask_query_fusion='dynamic')
# The conv branch predicts per-pixel mask logits (QueryInst's FCN mask head
# shape) and the codec encodes their sigmoid into the code, instead of v2's
# global 7 x 7 "FC" regressing the code: each pixel is predicted from its
# neighbourhood, so where a mask pixel lies need not be learned per output
# from a hundred instances (docs/istr.md#small-data-keys).
istr_dense_code_bbox_head = dict(mask_code_head='dense')
