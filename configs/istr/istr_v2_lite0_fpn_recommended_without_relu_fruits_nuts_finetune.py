# Leave-one-out ablation of the recommended small-data ISTR
# (docs/istr.md#small-data-keys): everything of
# istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts_finetune.py
# except the activation, which is ISTR's ELU again.
_base_ = './istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts_finetune.py'
_elu = dict(_delete_=True, type='ELU')
model = dict(
    roi_head=dict(
        bbox_head=dict(
            fc_act_cfg=_elu,
            ffn_act_cfg=_elu,
            dynamic_conv_cfg=dict(act_cfg=_elu))))
