# EmbedMask R-50-FPN 1x with the behaviour of the released code (official
# v3, yinghdb/EmbedMask@e9d6142, embed_mask_R50_1x.yaml; specs/methods.md 1.1-1.4).
# Checkpoints converted with tools/model_converters/embedmask_to_mmembed.py
# load into this config.
_base_ = './embedmask_r50_fpn_1x_coco.py'
model = dict(
    # maskrcnn-benchmark's pixel means (MSRA caffe weights)
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717]),
    bbox_head=dict(
        embed_dim=16,  # EMBED_DIM 16
        margin_per_dim=True,  # one margin per dimension
        margin_source='tower',  # conv3x3 on bbox tower / 32
        margin_tower_scale=1 / 32,  # MARGIN_REDUCE_FACTOR 32
        spatial_dims=2),  # 2 spatial dims (+ coords / 100)
    mask_head=dict(
        embed_dim=16,
        margin_dims=16,
        spatial_dims=2,
        proposal_sampling='best_iou',  # single best-IoU sample per GT
        loss_region='image',  # BOX_PADDING -1: whole stride-4 map
        normalize_by='sampled_gts',  # mean over GTs that have a sample
        loss_smooth=None),  # no smooth loss in v2 / v3
    test_cfg=dict(
        mask_thr=0.53,  # MASK_TH 0.53 (compared as log-probability)
        mask_box_expand=2))  # log-prob computed in box + 2 px, -10 elsewhere
