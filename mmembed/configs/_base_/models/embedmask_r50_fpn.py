# Copyright (c) mmembed authors. All rights reserved.
# EmbedMask R-50-FPN, paper (arXiv 1912.01954 v1) behaviour: the pure-Python
# twin of configs/_base_/models/embedmask_r50_fpn.py (comments on each key
# there and in docs/embedmask.md).
from mmdet.models import (FPN, CrossEntropyLoss, DetDataPreprocessor,
                          FocalLoss, GIoULoss, ResNet)

from mmembed.models import (EmbedMask, EmbedMaskBoxHead, EmbedMaskHead,
                            LovaszHingeLoss, SmoothEmbeddingLoss)

model = dict(
    type=EmbedMask,
    data_preprocessor=dict(
        type=DetDataPreprocessor,
        # caffe-style R-50 (BGR, 0-255, std 1), as the official models
        mean=[103.53, 116.28, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        type=ResNet,
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='caffe',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet50_caffe')),
    # P3-P7, P6 from P5 with a ReLU before P7 (official FCOS, USE_C5 False)
    neck=dict(
        type=FPN,
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type=EmbedMaskBoxHead,
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        conv_bias=True,  # official towers keep the bias next to GN
        norm_on_bbox=True,
        centerness_on_reg=True,
        center_sampling=True,
        center_sample_radius=1.5,
        sample_in_mask=True,
        embed_dim=32,
        margin_per_dim=False,
        margin_source='box',
        spatial_dims=0,
        prior_margin=2.0,
        loss_cls=dict(
            type=FocalLoss,
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type=GIoULoss, loss_weight=1.0),
        loss_centerness=dict(
            type=CrossEntropyLoss, use_sigmoid=True, loss_weight=1.0)),
    mask_head=dict(
        type=EmbedMaskHead,
        in_channels=256,
        feat_channels=256,
        stacked_convs=4,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        embed_dim=32,
        margin_dims=1,
        spatial_dims=0,
        proposal_sampling='iou_mean',
        sample_iou_thr=0.5,
        loss_region='box',
        box_expand_ratio=0.1,
        box_expand_cells=1,
        normalize_by='all_gts',
        loss_mask=dict(
            type=LovaszHingeLoss,
            input_type='probs',
            prob_eps=1e-9,
            loss_weight=0.5),
        loss_smooth=dict(type=SmoothEmbeddingLoss, loss_weight=0.1)),
    train_cfg=None,
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
        mask_thr=0.5,
        mask_box_expand=0,
        mask_chunk_pixels=2000000))
