# Parts that turn an R-50 + FPN COCO config into its SharpMaskFPN twin: FPN
# stays for the boxes and classes; the mask-only refinement path starts from
# the finest FPN output and merges C2 (256 channels, stride 4) and the stem
# C1 (64 channels, stride 2, from ResNetWithStem) into a 64-channel stride-2
# mask map, appended last (docs/sharpmask.md#sharpmaskfpn). Widths 64 / 32 on
# the path keep its cost near the mask tower it feeds; the stride-2 map is
# 16x the pixels of P3. The names are prefixed (sm_) so this file merges
# with any method config.
sm_backbone = dict(type='ResNetWithStem')  # C1 first, weights as ResNet's
sm_neck = dict(
    type='SharpMaskFPN',
    stem_channels=64,
    mask_start_level=0,
    mask_channels=(64, 32),
    mask_hidden_channels=(64, 32),
    mask_out_channels=64,
    detach_fpn=False)
sm_mask_channels = 64
sm_mask_stride = 2
