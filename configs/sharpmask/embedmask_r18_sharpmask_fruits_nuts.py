# The CPU-sized EmbedMask of embedmask_r18_fpn_fruits_nuts.py (same backbone,
# widths, heads, schedule and input size) with the SharpMask neck: the pair
# for the FPN vs SharpMask boundary-AP comparison (docs/sharpmask.md).
_base_ = '../embedmask/embedmask_r18_fpn_fruits_nuts.py'
model = dict(
    neck=dict(
        _delete_=True,
        type='SharpMaskNeck',
        in_channels=[64, 128, 256, 512],
        out_channels=64,
        start_level=1,
        num_outs=5,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        mask_channels=64,
        hidden_channels=64,
        padding_mode='replicate',
        upsample_mode='bilinear',
        finest_out='input'),
    mask_head=dict(in_level=-1, in_stride=4, upsample_factor=1))
# mask AP and boundary AP side by side (mmembed.evaluation); the other
# CocoMetric keys (ann_file, metric) come from the dataset config
val_evaluator = dict(type='BoundaryCocoMetric')
test_evaluator = val_evaluator
