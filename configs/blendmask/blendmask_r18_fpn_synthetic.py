# BlendMask (released-code behaviour) trained from scratch on the synthetic
# shapes set (tools/misc/make_synthetic_coco.py) in a few minutes on a CPU;
# the twin of configs/embedmask/embedmask_r18_fpn_synthetic.py.
_base_ = [
    '../_base_/models/blendmask_r18_fpn_small.py',
    '../_base_/datasets/synthetic_instance.py',
    '../_base_/schedules/cpu_adamw_12e.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=1, max_keep_ckpts=1))
