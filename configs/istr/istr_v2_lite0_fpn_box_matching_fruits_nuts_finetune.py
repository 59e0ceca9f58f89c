# Ablation (docs/istr.md#small-data-keys): ISTR v2 fine-tuned without the
# mask-code matching cost (queries matched on classes and boxes); nothing
# else changes.
_base_ = [
    './istr_v2_lite0_fpn_fruits_nuts_finetune.py',
    '../_base_/models/istr_small_data_keys.py',
]
model = dict(train_cfg={{_base_.istr_box_matching_train_cfg}})
