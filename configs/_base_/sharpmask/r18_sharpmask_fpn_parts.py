# Parts that turn a CPU-sized R-18 + FPN fruits_nuts config (from scratch)
# into its SharpMaskFPN twin: ResNetWithStem returns the stem C1 (64
# channels, stride 2) first; the path merges C2 and C1 into a 64-channel
# stride-2 mask map, as lite0_sharpmask_fpn_parts.py does for Lite0.
sm_backbone = dict(type='ResNetWithStem')
sm_neck = dict(
    type='SharpMaskFPN',
    stem_channels=64,
    mask_start_level=0,
    mask_channels=(64, 32),
    mask_hidden_channels=(64, 32),
    mask_out_channels=64,
    detach_fpn=False)
sm_mask_stride = 2
