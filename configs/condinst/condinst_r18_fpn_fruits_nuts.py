# Peer of configs/embedmask/embedmask_r18_fpn_fruits_nuts.py: mmdet's
# CondInst with the same backbone, widths, schedule, data and input size.
_base_ = [
    '../_base_/models/condinst_r18_fpn_small.py',
    '../_base_/datasets/fruits_nuts_instance.py',
    '../_base_/schedules/cpu_adamw_80e.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(bbox_head=dict(num_classes=3))
default_hooks = dict(
    logger=dict(interval=9),
    checkpoint=dict(interval=80, max_keep_ckpts=1))
