# ISTR (v1 behaviour, CPU-sized) trained from scratch on the synthetic
# shapes set (tools/misc/make_synthetic_coco.py). Fit its codec first:
#   python tools/misc/fit_mask_codec.py data/synthetic/annotations/train.json \
#       --out data/synthetic/istr_pca60_m28.npz
_base_ = [
    '../_base_/models/istr_r18_fpn_small.py',
    '../_base_/datasets/synthetic_instance.py',
    '../_base_/schedules/cpu_adamw_12e.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=4),
        mask_codec=dict(codec_file='data/synthetic/istr_pca60_m28.npz')))
# Query-based detectors need a gentler optimiser than FCOS: the official
# gradient clip (1.0) and a lower lr than the EmbedMask small configs
optim_wrapper = dict(
    optimizer=dict(lr=2e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0, norm_type=2))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=1, max_keep_ckpts=1))
