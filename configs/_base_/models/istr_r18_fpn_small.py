# A CPU-sized ISTR for small data trained from scratch: ResNet-18 with
# trainable BN and no pretrained weights (none can be downloaded in CI),
# 64-channel FPN, queries and stage heads, 100 queries. Everything else
# (6 stages, ELU, 60-d PCA codec of 28x28 masks, costs, losses) is the
# official v1 model of istr_r50_fpn.py.
_base_ = './istr_r50_fpn.py'
channels = 64
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels),
    rpn_head=dict(num_proposals=100, proposal_feature_channel=channels),
    roi_head=dict(
        proposal_feature_channel=channels,
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels,
            feedforward_channels=4 * channels,
            num_heads=4,
            dynamic_conv_cfg=dict(
                in_channels=channels, feat_channels=16,
                out_channels=channels))),
    # as many detections per image as the QueryInst peer keeps (100: all
    # queries), so the learning check compares AP at the same budget
    test_cfg=dict(rcnn=dict(max_per_img=100)))
