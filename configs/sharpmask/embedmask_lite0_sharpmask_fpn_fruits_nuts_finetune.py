# EmbedMask fine-tuned from ImageNet Lite0 on fruits_nuts with SharpMaskFPN:
# the box head reads FPN (as in the twin
# configs/embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py), the pixel
# branch reads the stride-2 refined mask map (the last neck output) without
# the x2 upsampling; everything else is the twin's.
_base_ = [
    '../embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py',
    '../_base_/sharpmask/lite0_sharpmask_fpn_parts.py',
]
model = dict(
    backbone={{_base_.sm_backbone}},
    neck={{_base_.sm_neck}},
    mask_head=dict(
        in_level=-1, in_stride={{_base_.sm_mask_stride}}, upsample_factor=1))
