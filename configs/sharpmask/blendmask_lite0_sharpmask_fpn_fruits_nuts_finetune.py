# BlendMask fine-tuned from ImageNet Lite0 on fruits_nuts with SharpMaskFPN:
# the box head (and its attentions) read FPN, as in the twin
# configs/blendmask/blendmask_lite0_fpn_fruits_nuts_finetune.py; the bases
# read only the stride-2 refined mask map (the last neck output; it already
# merges FPN's P3 with C2 and C1 top-down, the job of the bases' P3-P5 sum),
# without the basis tower's x2, so RoIAlign crops them at scale 1/2.
_base_ = [
    '../blendmask/blendmask_lite0_fpn_fruits_nuts_finetune.py',
    '../_base_/sharpmask/lite0_sharpmask_fpn_parts.py',
]
model = dict(
    backbone={{_base_.sm_backbone}},
    neck={{_base_.sm_neck}},
    mask_head=dict(
        in_levels=(-1, ),
        in_stride={{_base_.sm_mask_stride}},
        basis_upsample=False))
