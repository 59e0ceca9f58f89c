# The scratch-protocol twin of blendmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py:
# blendmask/blendmask_r18_fpn_fruits_nuts.py (R-18 from scratch, all 18 photos) with
# SharpMaskFPN; the mask branch reads the stride-2 refined map.
_base_ = [
    '../blendmask/blendmask_r18_fpn_fruits_nuts.py',
    '../_base_/sharpmask/r18_sharpmask_fpn_parts.py',
]
model = dict(
    backbone={{_base_.sm_backbone}},
    neck={{_base_.sm_neck}},
    mask_head=dict(
        in_levels=(-1, ),
        in_stride={{_base_.sm_mask_stride}},
        basis_upsample=False))
