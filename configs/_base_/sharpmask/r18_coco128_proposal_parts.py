# Parts of the CPU-sized proposal configs: ResNet-18 from scratch (no
# ImageNet weights can be downloaded here) on coco128's 128 images, trained
# and evaluated (class-agnostic segment AR) on the same file. Each R-18
# config is its R-50 twin with these taken over (as base variables), and
# its own CPU-sized schedule:
# configs/sharpmask/deepmask_r18_coco128_proposals.py (from
# deepmask_r50_coco_proposals.py) and sharpmask_r18_coco128_proposals.py
# (from sharpmask_r50_coco_proposals.py).
coco128_data_root = '../shared/data/coco128/'
coco128_ann_file = 'annotations/instances_train2017.json'
coco128_dataset = dict(
    data_root=coco128_data_root,
    ann_file=coco128_ann_file,
    data_prefix=dict(img='train2017/'))

# trained BN (the R-50 configs freeze ImageNet statistics)
r18_backbone = dict(
    depth=18,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    init_cfg=None)
r18_deepmask_head = dict(in_channels=256)  # ResNet-18 C4
# ResNet-18 C4, C3, C2, C1 (SharpMaskRefinementHead.skip_channels)
r18_skip_channels = (256, 128, 64, 64)

coco128_train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    dataset=coco128_dataset)
coco128_val_dataloader = dict(
    num_workers=1, persistent_workers=False, dataset=coco128_dataset)
coco128_evaluator = dict(ann_file=coco128_data_root + coco128_ann_file)
