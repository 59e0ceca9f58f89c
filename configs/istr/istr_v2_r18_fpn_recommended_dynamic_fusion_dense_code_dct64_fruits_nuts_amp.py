# istr_v2_r18_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts.py
# (the recommended small-data ISTR, from scratch) with fp16 mixed precision
# on CUDA (mmengine AmpOptimWrapper: autocast + dynamic loss scaling; the
# base config's gradient clip applies to the unscaled gradients). Checked on
# the CPU with bf16 by tests/robustness/test_amp.py; see docs/reliability.md.
_base_ = './istr_v2_r18_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts.py'
optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16',
                     loss_scale='dynamic')
