# Leave-one-out ablation of the recommended small-data ISTR
# (docs/istr.md#small-data-keys): everything of
# istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts_finetune.py
# except the matching, which has v2's mask-code cost again (weight 1 in
# every stage), so the mask branch runs on all queries in training.
_base_ = './istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts_finetune.py'
model = dict(train_cfg={{_base_.istr_v2_train_cfg}})
