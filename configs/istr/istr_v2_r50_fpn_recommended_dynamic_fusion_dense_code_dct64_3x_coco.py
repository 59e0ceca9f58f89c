# The recommended small-data ISTR (docs/istr.md#small-data-keys: the keys of
# istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts_
# finetune.py) on the COCO R-50 v2 config with the DCT codec: the learned
# query start, ReLU, box-only matching, the dynamic query fusion and the
# dense code head, a 64-d DCT code. Its accuracy was measured on the small-
# data checks only; on COCO it gives the latency figure in benchmarks/run.py
# (model istr_v2_recommended) beside the official v2 and QueryInst.
_base_ = [
    './istr_v2_r50_fpn_dct_3x_coco.py',
    '../_base_/models/istr_small_data_keys.py',
]
_relu = {{_base_.istr_relu}}
model = dict(
    rpn_head={{_base_.istr_embedding_start_rpn_head}},
    roi_head=dict(
        # istr_relu_bbox_head + istr_dynamic_fusion_bbox_head +
        # istr_dense_code_bbox_head
        bbox_head=dict(
            fc_act_cfg=_relu,
            ffn_act_cfg=_relu,
            dynamic_conv_cfg=dict(act_cfg=_relu),
            mask_query_fusion='dynamic',
            mask_code_head='dense'),
        mask_codec=dict(code_dim=64)),
    train_cfg={{_base_.istr_box_matching_train_cfg}})
