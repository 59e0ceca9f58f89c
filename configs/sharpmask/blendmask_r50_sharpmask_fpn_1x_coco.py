# BlendMask R-50 1x on COCO with SharpMaskFPN: the box head and its
# attentions read FPN's P3-P7 exactly as blendmask_r50_fpn_1x_coco.py; the
# bases read only the stride-2 refined mask map (the last neck output; it
# already merges P3 with C2 and C1 top-down, the job of the bases' P3-P5
# sum) without the basis tower's x2, so RoIAlign crops them at scale 1/2.
# 8 GPUs x 2 images: `tools/dist_train.sh configs/sharpmask/blendmask_r50_sharpmask_fpn_1x_coco.py 8`
_base_ = [
    '../blendmask/blendmask_r50_fpn_1x_coco.py',
    '../_base_/sharpmask/r50_sharpmask_fpn_parts.py',
]
model = dict(
    backbone={{_base_.sm_backbone}},
    neck={{_base_.sm_neck}},
    mask_head=dict(
        in_channels={{_base_.sm_mask_channels}},
        in_levels=(-1, ),
        in_stride={{_base_.sm_mask_stride}},
        basis_upsample=False))
