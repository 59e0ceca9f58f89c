# mmembed's recommended ISTR for small data (docs/istr.md#small-data-keys),
# trained from scratch on fruits_nuts: the recommended keys (ReLU, the
# learned-embedding query start, matching on classes and boxes) plus the
# dynamic query fusion and the dense code head with a 64-d DCT code; the
# scratch twin of the fine-tune config
# (..._lite0_..._finetune.py of the same name).
_base_ = './istr_v2_r18_fpn_recommended_fruits_nuts.py'
model = dict(
    roi_head=dict(
        bbox_head=dict(mask_query_fusion='dynamic', mask_code_head='dense'),
        mask_codec=dict(code_dim=64)))
