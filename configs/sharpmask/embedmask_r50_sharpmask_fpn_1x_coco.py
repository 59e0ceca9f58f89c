# EmbedMask R-50 1x on COCO with SharpMaskFPN: the box head reads FPN's
# P3-P7 exactly as embedmask_r50_fpn_1x_coco.py; the pixel embeddings are
# predicted straight from the stride-2 refined mask map (the last neck
# output, 64 channels) instead of four 256-channel convs on P3 upsampled x2:
# the refinement path is the tower (at stride 2, the four convs would cost
# 16x theirs at P3). Schedule, losses and everything else: the FPN config.
# 8 GPUs x 2 images: `tools/dist_train.sh configs/sharpmask/embedmask_r50_sharpmask_fpn_1x_coco.py 8`
_base_ = [
    '../embedmask/embedmask_r50_fpn_1x_coco.py',
    '../_base_/sharpmask/r50_sharpmask_fpn_parts.py',
]
model = dict(
    backbone={{_base_.sm_backbone}},
    neck={{_base_.sm_neck}},
    mask_head=dict(
        in_channels={{_base_.sm_mask_channels}},
        feat_channels={{_base_.sm_mask_channels}},
        stacked_convs=0,
        in_level=-1,
        in_stride={{_base_.sm_mask_stride}},
        upsample_factor=1))
