# A CPU-sized BlendMask (released-code behaviour) for small data trained from
# scratch, the twin of embedmask_r18_fpn_small.py: ResNet-18 with trainable
# BN and no pretrained weights, 64-channel FPN and box head with 2 convs per
# tower, 64-channel basis module with BN (SyncBN needs a process group).
_base_ = './blendmask_r50_fpn.py'
norm_cfg = dict(type='GN', num_groups=16, requires_grad=True)
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    bbox_head=dict(
        in_channels=64, feat_channels=64, stacked_convs=2, norm_cfg=norm_cfg),
    mask_head=dict(
        in_channels=64,
        feat_channels=64,
        norm_cfg=dict(type='BN', requires_grad=True)))
