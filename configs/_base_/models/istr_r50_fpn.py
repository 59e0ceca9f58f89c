# ISTR R-50-FPN, official v1 behaviour (hujiecpp/ISTR @967c901,
# specs/methods.md 3): 300 queries initialised from the image (GAP of P2-P5
# summed + a learned embedding), 6 Sparse R-CNN stages with ELU and a 3-FC
# mask-code branch, a 60-d whitened PCA codec of 28x28 masks, Hungarian
# matching with focal / L1 / GIoU / mask-code cosine costs. Every key is
# documented in mmembed/models/roi_heads/ and docs/istr.md.
num_stages = 6
num_proposals = 300
code_dim = 60
stage_head = dict(
    type='ISTRStageHead',
    num_classes=80,
    num_ffn_fcs=2,
    num_heads=8,
    num_cls_fcs=3,  # ISTR: 3 cls FCs (Sparse R-CNN: 1)
    num_reg_fcs=3,
    num_mask_fcs=3,  # code_dim: ISTRRoIHead sets the codec's
    feedforward_channels=2048,
    in_channels=256,
    dropout=0.0,
    fc_act_cfg=dict(type='ELU'),  # ISTR uses ELU everywhere
    ffn_act_cfg=dict(type='ELU'),
    dynamic_conv_cfg=dict(
        type='DynamicConv',
        in_channels=256,
        feat_channels=64,
        out_channels=256,
        input_feat_shape=7,
        act_cfg=dict(type='ELU'),
        norm_cfg=dict(type='LN')),
    # v1 weights: CLASS 2, L1 5, GIOU 2, MASK 2 (code MSE and dice)
    loss_cls=dict(
        type='FocalLoss',
        use_sigmoid=True,
        gamma=2.0,
        alpha=0.25,
        loss_weight=2.0),
    loss_bbox=dict(type='L1Loss', loss_weight=5.0),
    loss_iou=dict(type='GIoULoss', loss_weight=2.0),
    loss_mask_code=dict(type='MSELoss', reduction='mean', loss_weight=2.0),
    loss_mask_dice=dict(
        type='DiceLoss',
        use_sigmoid=False,
        activate=False,
        naive_dice=False,
        eps=5e-6,  # ISTR: + 1e-5 in the denominator (two sums here)
        reduction='mean',
        loss_weight=2.0),
    # ISTR box weights (2, 2, 1, 1) = stds (0.5, 0.5, 1, 1)
    bbox_coder=dict(
        type='DeltaXYWHBBoxCoder',
        clip_border=False,
        target_means=[0., 0., 0., 0.],
        target_stds=[0.5, 0.5, 1., 1.]))
stage_train_cfg = dict(
    assigner=dict(
        type='HungarianAssigner',
        match_costs=[
            dict(type='FocalLossCost', weight=2.0, eps=1e-8),
            # L1 of xyxy boxes normalised by the image size
            dict(type='BBoxL1Cost', weight=5.0, box_format='xyxy'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0),
            dict(type='MaskCodeCost', weight=2.0),
        ]),
    sampler=dict(type='PseudoSampler'),
    pos_weight=1)
model = dict(
    type='SparseRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # torchvision R-50 (RGB, ImageNet mean / std), as the official model
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,  # = detectron2 FREEZE_AT 2 (stem + res2)
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=4),  # P2-P5
    rpn_head=dict(
        type='ISTREmbeddingRPNHead',
        num_proposals=num_proposals,
        proposal_feature_channel=256,
        feat_levels=(0, 1, 2, 3)),
    roi_head=dict(
        type='ISTRRoIHead',
        num_stages=num_stages,
        stage_loss_weights=[1] * num_stages,  # deep supervision, equal
        proposal_feature_channel=256,
        bbox_roi_extractor=dict(
            # mmdet's SingleRoIExtractor with the same RoIAlign values, by
            # batched matmuls on the CPU where they are faster (inference;
            # a training pass at 7x7 keeps mmcv's kernel); mmcv on CUDA
            type='SeparableRoIExtractor',
            # ROIAlignV2 7x7, sampling ratio 2; finest_scale 56 = detectron2's
            # canonical 224 / level 4 rule
            roi_layer=dict(
                type='RoIAlign', output_size=7, sampling_ratio=2,
                aligned=True),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        # one dict: the same head config for every stage (CascadeRoIHead)
        bbox_head=stage_head,
        # fit with tools/misc/fit_mask_codec.py; leaf configs set codec_file
        mask_codec=dict(
            type='PCAMaskCodec', code_dim=code_dim, mask_size=28,
            codec_file=None)),
    train_cfg=dict(rpn=None, rcnn=[stage_train_cfg] * num_stages),
    test_cfg=dict(
        rpn=None,
        # top-100 of the 300 x 80 scores, no NMS; ISTR pastes at 0.5
        rcnn=dict(max_per_img=100, mask_thr_binary=0.5, mask_impl='auto')))
# ISTR draws random soft mask targets in its loss: seed every iteration
# from (seed, iteration, rank) so that --resume reproduces the
# uninterrupted run (mmembed.engine.IterationSeedHook, docs/istr.md)
custom_hooks = [dict(type='IterationSeedHook')]
