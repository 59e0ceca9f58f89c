# BlendMask R-50 1x on COCO with SharpMaskFPN: the box head and its
# attentions read FPN's P3-P7 exactly as blendmask_r50_fpn_1x_coco.py; the
# bases read only the refined mask map (the last neck output; it merges P3
# with C2 top-down, the job of the bases' P3-P5 sum) without the basis
# tower's x2, so RoIAlign crops them at scale 1/4. BlendMask's path stops at
# stride 4 (no C1): on the held-out fine-tune check the stride-2 path gained
# +0.007 boundary AP over the FPN twin, this one +0.040
# (docs/sharpmask.md#blendmask-the-path-stops-at-stride-4); the stride-2
# path is `neck={{_base_.sm_neck}}` with `backbone={{_base_.sm_backbone}}`.
# 8 GPUs x 2 images: `tools/dist_train.sh configs/sharpmask/blendmask_r50_sharpmask_fpn_1x_coco.py 8`
_base_ = [
    '../blendmask/blendmask_r50_fpn_1x_coco.py',
    '../_base_/sharpmask/r50_sharpmask_fpn_parts.py',
    '../_base_/sharpmask/sharpmask_fpn_c2_path.py',
]
model = dict(
    neck={{_base_.sm_neck_c2}},
    mask_head=dict(
        in_channels={{_base_.sm_mask_channels}},
        in_levels=(-1, ),
        in_stride={{_base_.sm_mask_stride_c2}},
        basis_upsample=False))
