# ISTR v2 (ISTR-PCA-R50-3x.yaml, hujiecpp/ISTR@1dac079) R-50-FPN 3x on COCO:
# the v1 config with the v2 keys (configs/_base_/models/istr_v2_keys.py) and
# v2's augmentation. Fit the 256-d PCA codec of 112 x 112 masks once before
# training (a 12544 x 12544 covariance: about 1.3 GB of memory and tens of
# minutes on a CPU):
#   python tools/misc/fit_mask_codec.py \
#       data/coco/annotations/instances_train2017.json \
#       --out data/coco/istr_pca256_m112.npz --dim 256 --mask-size 112
# The codec is then stored in every checkpoint: testing needs no npz.
_base_ = [
    './istr_r50_fpn_3x_coco.py',
    '../_base_/models/istr_v2_keys.py',
]
model = dict(
    roi_head=dict(
        bbox_head={{_base_.istr_v2_bbox_head}},
        code_roi_extractor={{_base_.istr_v2_code_roi_extractor}},
        mask_target_boxes='pred',
        mask_codec=dict(
            code_dim=256,
            mask_size=112,
            codec_file='data/coco/istr_pca256_m112.npz')),
    train_cfg={{_base_.istr_v2_train_cfg}},
    test_cfg={{_base_.istr_v2_test_cfg}})

# v2's dataset_mapper / Base-ISTR.yaml: flip; shortest edge 416-1088 step 32
# (max 1333); with probability 0.5 a crop first (resize to 400/500/600, a
# random crop of 384-600 pixels per side, "absolute_range")
ms_scales = [(1333, s) for s in range(416, 1089, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[[
            dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[(1333, 400), (1333, 500), (1333, 600)],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='absolute_range',
                            crop_size=(384, 600),
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=ms_scales,
                            keep_ratio=True)
                    ]]),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
randomness = dict(seed=2333333)  # v2's Base-ISTR.yaml SEED
