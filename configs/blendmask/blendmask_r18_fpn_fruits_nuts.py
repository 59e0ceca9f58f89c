# BlendMask (released-code behaviour) trained from scratch on the 18
# fruits_nuts photos at 400x300 on a CPU, with the same backbone, widths,
# schedule and input size as the learning-check peers
# configs/embedmask/embedmask_r18_fpn_fruits_nuts.py and
# configs/condinst/condinst_r18_fpn_fruits_nuts.py.
_base_ = [
    '../_base_/models/blendmask_r18_fpn_small.py',
    '../_base_/datasets/fruits_nuts_instance.py',
    '../_base_/schedules/cpu_adamw_80e.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3))
default_hooks = dict(
    logger=dict(interval=9),
    checkpoint=dict(interval=80, max_keep_ckpts=1))
