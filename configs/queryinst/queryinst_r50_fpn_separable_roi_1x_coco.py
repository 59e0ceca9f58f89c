# mmdet's QueryInst R-50 with mmembed's SeparableRoIExtractor for its box and
# mask RoIs: the same RoIAlign values, computed by batched matmuls on the CPU
# (mmcv's CPU kernel is single-threaded); mmcv's kernel on CUDA. Everything
# else is mmdet::queryinst/queryinst_r50_fpn_1x_coco.py. benchmarks/run.py
# times it (queryinst_separable_roi) to show what the layer alone does for
# the peer of ISTR v2.
_base_ = 'mmdet::queryinst/queryinst_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(
    roi_head=dict(
        bbox_roi_extractor=dict(type='SeparableRoIExtractor'),
        mask_roi_extractor=dict(type='SeparableRoIExtractor')))
# mmembed's checked dataset and metric (configs/_base_/datasets/coco_instance.py)
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
val_evaluator = dict(type='CheckedCocoMetric')
test_evaluator = val_evaluator
