# EmbedMask R-50-FPN 1x on COCO, paper (v1) behaviour.
# 8 GPUs x 2 images; `tools/dist_train.sh configs/embedmask/embedmask_r50_fpn_1x_coco.py 8`
_base_ = [
    '../_base_/models/embedmask_r50_fpn.py',
    '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/embedmask_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
