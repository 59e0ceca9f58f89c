# An example project's own config: mmembed's small EmbedMask on the
# synthetic shapes set, with this project's mask head and loss.
#
# `mmembed::` bases resolve once mmembed is imported, so run it with a tool
# that imports mmembed before reading the config (mmembed's tools/train.py,
# `mmembed-train`, `python -m mmembed.cli train`), see
# docs/use_in_your_project.md.
_base_ = 'mmembed::embedmask/embedmask_r18_fpn_synthetic.py'

# registers RefinedEmbedMaskHead and LovaszDiceLoss (run from this folder,
# or put it on PYTHONPATH)
custom_imports = dict(
    imports=['mmembed', 'my_project'], allow_failed_imports=False)

model = dict(
    mask_head=dict(
        type='RefinedEmbedMaskHead',
        refine_convs=1,
        loss_mask=dict(
            _delete_=True,
            type='LovaszDiceLoss',
            lovasz_weight=1.0,
            dice_weight=1.0,
            loss_weight=0.5)))

# where tools/misc/make_synthetic_coco.py wrote the set (every path that the
# base derived from its data_root is restated)
data_root = 'data/synthetic/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
