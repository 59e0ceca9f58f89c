# Real-time BlendMask (AdelaiDet 550_R_50_3x.yaml = Base-550.yaml: 38.7 box /
# 34.5 mask AP, 28 FPS): P3-P6 only (one top level, P6 from P5), a 3-conv
# tower shared by classification and regression and no separate towers,
# 2 basis convs, short side 440..550 (step 22) / long side <= 916 in
# training, 550 / 916 at test.
_base_ = './blendmask_r50_fpn_ms-3x_coco.py'
model = dict(
    neck=dict(num_outs=4),
    bbox_head=dict(
        strides=[8, 16, 32, 64],
        # AdelaiDet SIZES_OF_INTEREST [64, 128, 256]
        regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 1e8)),
        num_share_convs=3,
        stacked_convs=0),
    mask_head=dict(num_convs=2))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(916, 440), (916, 462), (916, 484), (916, 506), (916, 528),
                (916, 550)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(916, 550), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
