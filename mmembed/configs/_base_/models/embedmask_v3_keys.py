# Copyright (c) mmembed authors. All rights reserved.
# The keys that switch EmbedMask from the paper (v1) behaviour to the
# released code (official v3): the pure-Python twin of
# configs/_base_/models/embedmask_v3_keys.py, where each key is explained.
# Defines no `model`; a config applies the three dicts with model.update().
embedmask_v3_bbox_head = dict(
    embed_dim=16,
    margin_per_dim=True,
    margin_source='tower',
    margin_tower_scale=1 / 32,
    spatial_dims=2)
embedmask_v3_mask_head = dict(
    embed_dim=16,
    margin_dims=16,
    spatial_dims=2,
    proposal_sampling='best_iou',
    loss_region='image',
    normalize_by='sampled_gts',
    loss_smooth=None)
embedmask_v3_test_cfg = dict(mask_thr=0.53, mask_box_expand=2)
