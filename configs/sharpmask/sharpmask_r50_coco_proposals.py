# SharpMask R-50 proposals (the paper's system; facebookresearch/deepmask
# train.lua -dm, specs/methods.md 4.2-4.4): a trained DeepMask
# (deepmask_r50_coco_proposals.py) frozen, and only the top-down refinement
# trained, on mask samples (hfreq = 0) with 160x160 labels, by plain SGD (no
# momentum, no weight decay), lr 1e-3 / 5e-4 after epoch 50 / 1e-4 after 80.
# Inference: the pyramid of 2^-2.5 ... 2^0.5, every 192-px window scored,
# the top 1000 refined to 160x160 masks, pasted, sigmoid > 0.2; evaluated as
# class-agnostic segment AR@10/100/1000.
_base_ = './deepmask_r50_coco_proposals.py'

model = dict(
    refine_head=dict(
        _delete_=True,
        type='SharpMaskRefinementHead',
        skip_channels=(1024, 512, 256, 64),   # C4, C3, C2, C1
        hidden_channels=(64, 64, 64, 32),     # the release (the port: 64)
        mask_channels=32,                     # km = ks = 32
        code_channels=512,
        window_cells=10,
        padding_mode='replicate',             # = symmetric at pad 1
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

# stage 1's weights; the refinement starts from its own initialisation
load_from = 'work_dirs/deepmask_r50_coco_proposals/iter_1200000.pth'
# only the refinement learns (trunk and DeepMask weights and BN statistics
# stay as loaded; the model also runs them without gradients)
custom_hooks = [dict(type='FreezeExceptHook', trainable=['refine_head'])]
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='SGD', lr=1e-3, momentum=0.,
                   weight_decay=0.))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0,
         end={{_base_.max_iters}}, milestones=[50 * 4000], gamma=0.5),
    dict(type='MultiStepLR', by_epoch=False, begin=0,
         end={{_base_.max_iters}}, milestones=[80 * 4000], gamma=0.2),
]
