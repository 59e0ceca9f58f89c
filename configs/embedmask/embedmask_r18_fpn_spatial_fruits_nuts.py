# Ablation of the learning check: the paper model plus v3's two spatial
# embedding dims (coordinates / 100 with a learnable scale), everything else
# as the paper. Isolates how much of the paper-vs-v3 gap on fruits_nuts the
# coordinate term explains (docs/embedmask.md#learning-check).
_base_ = './embedmask_r18_fpn_fruits_nuts.py'
model = dict(bbox_head=dict(spatial_dims=2), mask_head=dict(spatial_dims=2))
