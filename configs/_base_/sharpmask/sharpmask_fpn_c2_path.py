# SharpMaskFPN whose mask path stops at stride 4: one refinement step (FPN's
# finest output merged with C2), no C1, so the backbone stays the FPN twin's
# (no stem output). It does not depend on the backbone: C2's width comes
# from FPN's in_channels. BlendMask's configs use it: on the fine-tune check
# its stride-2 path missed the boundary target and this one meets it
# (docs/sharpmask.md#blendmask-the-path-stops-at-stride-4). Merge it after a
# *_sharpmask_fpn_parts.py for sm_mask_channels.
sm_neck_c2 = dict(
    type='SharpMaskFPN',
    stem_channels=None,
    mask_start_level=0,
    mask_channels=(64, ),
    mask_hidden_channels=(64, ),
    mask_out_channels=64,
    detach_fpn=False)
sm_mask_stride_c2 = 4
# BlendMask's mask head on that path: the bases read only the refined map
# (the last neck output) at stride 4, without the basis tower's x2
sm_blendmask_mask_head_c2 = dict(
    in_levels=(-1, ), in_stride=sm_mask_stride_c2, basis_upsample=False)
