# The scratch-protocol twin of blendmask_lite0_sharpmask_fpn_stride4_fruits_nuts_finetune.py:
# blendmask/blendmask_r18_fpn_fruits_nuts.py (R-18 from scratch, all 18 photos) with
# SharpMaskFPN whose path stops at stride 4 (P3 with C2, no C1: BlendMask's
# choice); the bases read the stride-4 refined map.
_base_ = [
    '../blendmask/blendmask_r18_fpn_fruits_nuts.py',
    '../_base_/sharpmask/sharpmask_fpn_c2_path.py',
]
model = dict(
    neck={{_base_.sm_neck_c2}},
    mask_head={{_base_.sm_blendmask_mask_head_c2}})
