# Parts that turn a fine-tune Lite0 + FPN config (configs/_base_/finetune/
# lite0_fruits_nuts_split.py) into its SharpMaskFPN twin: FPN stays for the
# boxes and classes; the mask-only refinement path starts from the finest
# FPN output and merges Lite0's C2 (24 channels, stride 4) and C1 (16
# channels, stride 2) into a 64-channel stride-2 mask map, appended last
# (docs/sharpmask.md#sharpmaskfpn). The names are prefixed (sm_) so this
# file merges with any method config.
sm_backbone = dict(stem_out=True)  # C1 first
sm_neck = dict(
    type='SharpMaskFPN',
    stem_channels=16,
    mask_start_level=0,
    mask_channels=(64, 32),
    mask_hidden_channels=(64, 32),
    mask_out_channels=64,
    detach_fpn=False)
sm_mask_stride = 2
