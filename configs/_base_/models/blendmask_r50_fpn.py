# BlendMask R-50-FPN with the behaviour of the released code (AdelaiDet
# configs/BlendMask/Base-BlendMask.yaml + R_50_1x.yaml, specs/methods.md
# section 2). Every key is documented in
# mmembed/models/dense_heads/blendmask_head.py and docs/blendmask.md.
model = dict(
    type='BlendMask',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # detectron2 MSRA R-50 (BGR, 0-255, std 1), as AdelaiDet
        mean=[103.53, 116.28, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # detectron2 FREEZE_AT 2 (stem + res2) with FrozenBN
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='caffe',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet50_caffe')),
    # P3-P7; P6 from P5, ReLU before P7 (AdelaiDet LastLevelP6P7 on "p5")
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='BlendMaskBoxHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        conv_bias=True,  # AdelaiDet towers keep the bias next to GN
        norm_on_bbox=True,
        centerness_on_reg=True,
        center_sampling=True,
        center_sample_radius=1.5,
        # AdelaiDet FCOS differences from mmdet's FCOS (USE_SCALE False,
        # THRESH_WITH_CTR True, scores sqrt(cls * ctr))
        use_scale=False,
        thresh_with_ctr=True,
        sqrt_score=True,
        num_bases=4,
        attn_size=14,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    mask_head=dict(
        type='BlenderHead',
        num_classes=80,
        in_channels=256,
        feat_channels=128,
        num_bases=4,
        attn_size=14,
        num_convs=3,
        in_levels=(0, 1, 2),
        in_stride=8,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        bottom_resolution=56,
        roi_sampling_ratio=1,
        # memory guard on crowded images; AdelaiDet has no cap (-1)
        max_pos_to_train=1000,
        loss_mask=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        # target built on the fly from the instance masks (AdelaiDet reads
        # precomputed thing_train2017/*.npz); None switches it off
        loss_semantic=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.3),
        # AdelaiDet's seg head uses nn.BatchNorm2d even with SyncBN bases
        semantic_norm_cfg=dict(type='BN', requires_grad=True)),
    train_cfg=None,
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
        mask_thr=0.5,
        mask_chunk_pixels=1 << 26))
