# ISTR v2 (official, hujiecpp/ISTR@1dac079: conv mask branch on 28 x 28 RoI
# features of predicted boxes, targets cropped by them, 112 x 112 masks,
# SmoothL1 + dice x 5, class logits averaged over stages 2-5, paste at 0.45)
# CPU-sized, trained from scratch on the 18 fruits_nuts photos. The codec is
# v2's DCT (ISTR-DCT): a 256-d PCA cannot be fitted on this data (about 200
# masks, fewer than the 256 components).
_base_ = [
    './istr_r18_fpn_fruits_nuts.py',
    '../_base_/models/istr_v2_keys.py',
]
model = dict(
    roi_head=dict(
        bbox_head={{_base_.istr_v2_bbox_head}},
        code_roi_extractor={{_base_.istr_v2_code_roi_extractor}},
        mask_target_boxes='pred',
        mask_codec=dict(
            _delete_=True, type='DCTMaskCodec', code_dim=256,
            mask_size=112)),
    train_cfg={{_base_.istr_v2_train_cfg}},
    test_cfg={{_base_.istr_v2_test_cfg}})
