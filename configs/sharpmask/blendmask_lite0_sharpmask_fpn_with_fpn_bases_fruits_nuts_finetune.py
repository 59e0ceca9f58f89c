# BlendMask with SharpMaskFPN whose bases read the stride-2 refined map AND
# FPN's P3-P5 (each through its own refine conv, upsampled to stride 2 and
# summed, as the bases' P3-P5 sum of the FPN twin). Candidate fix for the
# SharpMaskFPN BlendMask that reads the 64-channel map alone: it fits the
# training photos less well than its FPN twin (docs/sharpmask.md).
_base_ = ['./blendmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py']
model = dict(mask_head=dict(in_levels=(-1, 0, 1, 2)))
