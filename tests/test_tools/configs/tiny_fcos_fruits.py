# Copyright (c) mmembed authors. All rights reserved.
"""A tiny FCOS on fruits_nuts (18 images) for the tool tests.

Everything is sized so that 2 training iterations plus a test pass take a few
seconds on a CPU: ResNet-18 from scratch (``init_cfg=None``: nothing can be
downloaded in CI), a 32-channel FPN and head, images resized to 160x120.

Paths are relative to the repository root, which is where the tests run the
tools from: ``../shared/data/fruits_nuts/`` is the shared data checkout next
to the repository.
"""
_base_ = '../../../configs/_base_/datasets/fruits_nuts_instance.py'
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
default_scope = 'mmdet'

# ----------------------------------------------------------------- model
model = dict(
    type='FCOS',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='FPN',
        in_channels=[64, 128, 256, 512],
        out_channels=32,
        start_level=1,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='FCOSHead',
        num_classes=3,
        in_channels=32,
        stacked_convs=1,
        feat_channels=32,
        strides=[8, 16, 32, 64, 128],
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    test_cfg=dict(
        nms_pre=200,
        min_bbox_size=0,
        # a low threshold: the untrained test model still yields boxes, so
        # evaluation and result dumps see real detections
        score_thr=0.001,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=20))

# ------------------------------------------------------------------ data
# The project's fruits_nuts dataset base, shrunk: boxes only, 160x120 images,
# no worker processes (the machines running the tests have ~2 cores) and an
# infinite sampler for the iteration-based loop below.
img_scale = (160, 120)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator

# -------------------------------------------------------------- schedule
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=1000)
]
# lets `tools/train.py --auto-scale-lr` be exercised
auto_scale_lr = dict(enable=False, base_batch_size=2)

# --------------------------------------------------------------- runtime
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # by iteration, every 2: iter_2.pth after the 2 iterations (iter_4.pth
    # after a resume to max_iters=4)
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
# dist_cfg stays at the GPU default on purpose: tools/train.py and
# tools/test.py must switch it to gloo on a machine without CUDA.
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=1, by_epoch=False)
log_level = 'WARNING'
load_from = None
resume = False
