# mmdet's Mask R-CNN at the CPU size of the learning check (the peer of
# configs/embedmask/embedmask_r18_fpn_fruits_nuts.py): ResNet-18 from
# scratch with trainable BN, 64-channel FPN, RPN and RoI features; mmdet's
# heads otherwise (2 shared FCs of 256 for boxes, 4 convs + deconv for 28x28
# masks); the fruits_nuts data, schedule and input size of the FCOS family.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/fruits_nuts_instance.py',
    '../_base_/schedules/cpu_adamw_80e.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
channels = 64
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, num_classes=3),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            in_channels=channels, conv_out_channels=channels,
            num_classes=3)))
default_hooks = dict(
    logger=dict(interval=9),
    checkpoint=dict(interval=80, max_keep_ckpts=1))
