# mmdet's Mask R-CNN R-50 1x with the SharpMask neck in place of FPN:
# P2-P5 are the refined C2-C5 maps, P6 is max-pooled from P5 as in mmdet's
# FPN config, so the RPN (strides 4-64) and the RoI extractors (4-32) are
# unchanged. Everything else is mmdet's config.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(
    neck=dict(
        _delete_=True,
        type='SharpMaskNeck',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=0,
        num_outs=5,
        add_extra_convs=False,
        # detector mode, as embedmask_r50_sharpmask_1x_coco.py
        mask_channels=128,
        hidden_channels=128,
        padding_mode='replicate',
        upsample_mode='bilinear'))
# mmembed's checked dataset and metric (configs/_base_/datasets/coco_instance.py)
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
val_evaluator = dict(type='CheckedCocoMetric')
test_evaluator = val_evaluator
