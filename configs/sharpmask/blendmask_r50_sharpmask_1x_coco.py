# BlendMask R-50 1x on COCO with the SharpMask neck in place of FPN; schedule,
# heads and losses as blendmask_r50_fpn_1x_coco.py (docs/sharpmask.md).
# 8 GPUs x 2 images: `tools/dist_train.sh configs/sharpmask/blendmask_r50_sharpmask_1x_coco.py 8`
_base_ = '../blendmask/blendmask_r50_fpn_1x_coco.py'
model = dict(
    # detector mode, as embedmask_r50_sharpmask_1x_coco.py
    neck=dict(
        _delete_=True,
        type='SharpMaskNeck',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        num_outs=5,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        mask_channels=128,
        hidden_channels=128,
        padding_mode='replicate',
        upsample_mode='bilinear',
        finest_out='input'),
    # the bases read only the appended stride-4 map (it already merges C2-C5
    # top-down, the job of the bases' P3-P5 sum) instead of P3 x2: no x2 in
    # the basis tower, so the bases stay at stride 4 (RoIAlign scale 1/4) as
    # with FPN; the semantic head also runs at stride 4.
    mask_head=dict(in_levels=(-1, ), in_stride=4, basis_upsample=False))
