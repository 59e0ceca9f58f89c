# EmbedMask R-50 1x on COCO with the SharpMask neck in place of FPN; the
# schedule, heads and losses are those of embedmask_r50_fpn_1x_coco.py so the
# two compare neck against neck (docs/sharpmask.md).
# 8 GPUs x 2 images: `tools/dist_train.sh configs/sharpmask/embedmask_r50_sharpmask_1x_coco.py 8`
_base_ = '../embedmask/embedmask_r50_fpn_1x_coco.py'
model = dict(
    # detector mode: one width on the whole refinement path (the release's
    # 32 -> 2 channels are too narrow to feed detection heads) and bilinear
    # x2 (the paper's text); replicate padding as the release
    neck=dict(
        _delete_=True,
        type='SharpMaskNeck',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        num_outs=5,
        # P6 from P5 with a ReLU before P7, as the FPN config (official FCOS)
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        mask_channels=128,
        hidden_channels=128,
        padding_mode='replicate',
        upsample_mode='bilinear',
        # the refined C2 level (stride 4) is appended after P3-P7
        finest_out='input'),
    # pixel embeddings from the appended stride-4 map instead of P3
    # upsampled x2: no upsampling left in the head
    mask_head=dict(in_level=-1, in_stride=4, upsample_factor=1))
