# EmbedMask R-50-FPN 1x with the behaviour of the released code (official
# v3, embed_mask_R50_1x.yaml). Checkpoints converted with
# tools/model_converters/embedmask_to_mmembed.py load into this config.
_base_ = [
    './embedmask_r50_fpn_1x_coco.py', '../_base_/models/embedmask_v3_keys.py'
]
model = dict(
    # maskrcnn-benchmark's pixel means (MSRA caffe weights)
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717]),
    bbox_head={{_base_.embedmask_v3_bbox_head}},
    mask_head={{_base_.embedmask_v3_mask_head}},
    test_cfg={{_base_.embedmask_v3_test_cfg}})
