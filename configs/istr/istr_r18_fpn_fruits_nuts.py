# ISTR (v1 behaviour, CPU-sized) trained from scratch on the 18
# fruits_nuts photos. Fit its codec first:
#   python tools/misc/fit_mask_codec.py \
#       ../shared/data/fruits_nuts/trainval.json \
#       --out work_dirs/istr_codecs/fruits_nuts_pca60_m28.npz
_base_ = [
    '../_base_/models/istr_r18_fpn_small.py',
    '../_base_/datasets/fruits_nuts_instance.py',
    '../_base_/schedules/cpu_adamw_80e.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=3),
        mask_codec=dict(
            codec_file='work_dirs/istr_codecs/fruits_nuts_pca60_m28.npz')))
# Query-based detectors need a gentler optimiser than FCOS: the official
# gradient clip (1.0) and a lower lr than the EmbedMask small configs
optim_wrapper = dict(
    optimizer=dict(lr=2e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0, norm_type=2))
default_hooks = dict(
    logger=dict(interval=9),
    checkpoint=dict(interval=80, max_keep_ckpts=1))
