# istr_r18_fpn_synthetic.py with fp16 mixed precision on CUDA (mmengine
# AmpOptimWrapper: autocast + dynamic loss scaling; the gradient clip of the
# base config applies to the unscaled gradients). Checked on the CPU with
# bf16 by tests/robustness/test_amp.py; see docs/reliability.md.
_base_ = './istr_r18_fpn_synthetic.py'
optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16',
                     loss_scale='dynamic')
