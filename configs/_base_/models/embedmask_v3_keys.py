# The keys that switch an EmbedMask config from the paper (v1) behaviour to
# the released code (official v3, yinghdb/EmbedMask@e9d6142; specs/methods.md
# 1.1-1.4). A config uses them with
#   _base_ = [<paper config>, '<...>/_base_/models/embedmask_v3_keys.py']
#   model = dict(bbox_head={{_base_.embedmask_v3_bbox_head}},
#                mask_head={{_base_.embedmask_v3_mask_head}},
#                test_cfg={{_base_.embedmask_v3_test_cfg}})
# (this file defines no `model`, so it can be a second base).
embedmask_v3_bbox_head = dict(
    embed_dim=16,  # EMBED_DIM 16
    margin_per_dim=True,  # one margin per dimension
    margin_source='tower',  # conv3x3 on the bbox tower ...
    margin_tower_scale=1 / 32,  # ... divided by MARGIN_REDUCE_FACTOR 32
    spatial_dims=2)  # 2 spatial dims (+ coords / 100, learnable scale)
embedmask_v3_mask_head = dict(
    embed_dim=16,
    margin_dims=16,
    spatial_dims=2,
    proposal_sampling='best_iou',  # single best-IoU sample per GT
    loss_region='image',  # BOX_PADDING -1: the whole stride-4 map
    normalize_by='sampled_gts',  # mean over the GTs that have a sample
    loss_smooth=None)  # no smooth loss in v2 / v3
embedmask_v3_test_cfg = dict(
    mask_thr=0.53,  # MASK_TH 0.53, compared as a log-probability
    mask_box_expand=2)  # log-prob in box + 2 px at stride 4, -10 elsewhere
