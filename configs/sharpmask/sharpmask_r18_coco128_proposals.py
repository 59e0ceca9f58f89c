# The CPU-sized SharpMask stage of sharpmask_r50_coco_proposals.py: the
# DeepMask of deepmask_r18_coco128_proposals.py frozen, the refinement
# (ResNet-18 skip widths) trained alone on 160x160 mask samples of coco128,
# plain SGD as the release (no momentum, no weight decay) at a CPU-sized
# number of iterations, then evaluated as class-agnostic segment AR.
_base_ = './deepmask_r18_coco128_proposals.py'

model = dict(
    refine_head=dict(
        _delete_=True,
        type='SharpMaskRefinementHead',
        skip_channels=(256, 128, 64, 64),     # ResNet-18 C4, C3, C2, C1
        hidden_channels=(64, 64, 64, 32),
        mask_channels=32,
        code_channels=512,
        window_cells=10,
        padding_mode='replicate',
        loss_weight=32.),
    train_stage='sharpmask')

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='DeepMaskPatchSampler', input_size=160, label_size=160,
         hfreq=0.),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'img_shape', 'patch_label',
                    'patch_has_mask')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
load_from = 'work_dirs/deepmask_r18_coco128_proposals/iter_400.pth'
custom_hooks = [dict(type='FreezeExceptHook', trainable=['refine_head'])]
max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0., weight_decay=0.))
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=max_iters))
