# Copyright (c) mmembed authors. All rights reserved.
"""The official-checkpoint converter on a state dict built here with the
official EmbedMask v3 (maskrcnn-benchmark) key names and shapes."""
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmdet.registry import MODELS

from mmembed.testing import get_detector_cfg, get_repo_root

V3_CONFIG = 'embedmask/embedmask_r50_fpn_v3_1x_coco.py'


def load_converter():
    path = osp.join(get_repo_root(), 'tools', 'model_converters',
                    'embedmask_to_mmembed.py')
    spec = importlib.util.spec_from_file_location('embedmask_converter', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frozen_bn(sd, prefix, channels):
    for name in ('weight', 'bias', 'running_mean', 'running_var'):
        sd[f'{prefix}.{name}'] = torch.randn(channels)


def official_r50_v3_state_dict(embed_dim=16, num_classes=80):
    """Key names and shapes of yinghdb/EmbedMask v3 embed_mask_R50_1x
    (specs/methods.md 1.1 and 1.7), written out from the spec."""
    torch.manual_seed(0)
    sd = OrderedDict()
    sd['backbone.body.stem.conv1.weight'] = torch.randn(64, 3, 7, 7)
    frozen_bn(sd, 'backbone.body.stem.bn1', 64)
    in_ch = 64
    for layer, (blocks, width) in enumerate(
        [(3, 64), (4, 128), (6, 256), (3, 512)], start=1):
        for block in range(blocks):
            p = f'backbone.body.layer{layer}.{block}'
            sd[f'{p}.conv1.weight'] = torch.randn(width, in_ch, 1, 1)
            frozen_bn(sd, f'{p}.bn1', width)
            sd[f'{p}.conv2.weight'] = torch.randn(width, width, 3, 3)
            frozen_bn(sd, f'{p}.bn2', width)
            sd[f'{p}.conv3.weight'] = torch.randn(width * 4, width, 1, 1)
            frozen_bn(sd, f'{p}.bn3', width * 4)
            if block == 0:
                sd[f'{p}.downsample.0.weight'] = torch.randn(
                    width * 4, in_ch, 1, 1)
                frozen_bn(sd, f'{p}.downsample.1', width * 4)
            in_ch = width * 4
    for idx, c in zip((2, 3, 4), (512, 1024, 2048)):
        sd[f'backbone.fpn.fpn_inner{idx}.weight'] = torch.randn(256, c, 1, 1)
        sd[f'backbone.fpn.fpn_inner{idx}.bias'] = torch.randn(256)
        sd[f'backbone.fpn.fpn_layer{idx}.weight'] = torch.randn(256, 256, 3, 3)
        sd[f'backbone.fpn.fpn_layer{idx}.bias'] = torch.randn(256)
    for p in ('p6', 'p7'):
        sd[f'backbone.fpn.top_blocks.{p}.weight'] = torch.randn(256, 256, 3, 3)
        sd[f'backbone.fpn.top_blocks.{p}.bias'] = torch.randn(256)
    head = 'rpn.head'
    for tower in ('cls_tower', 'bbox_tower', 'mask_tower'):
        for i in range(4):
            sd[f'{head}.{tower}.{3 * i}.weight'] = torch.randn(256, 256, 3, 3)
            sd[f'{head}.{tower}.{3 * i}.bias'] = torch.randn(256)
            sd[f'{head}.{tower}.{3 * i + 1}.weight'] = torch.randn(256)
            sd[f'{head}.{tower}.{3 * i + 1}.bias'] = torch.randn(256)

    def conv(name, out):
        sd[f'{head}.{name}.weight'] = torch.randn(out, 256, 3, 3)
        sd[f'{head}.{name}.bias'] = torch.randn(out)

    conv('cls_logits', num_classes)
    conv('bbox_pred', 4)
    conv('centerness', 1)
    conv('proposal_spatial_embed_pred', 2)
    conv('proposal_other_embed_pred', embed_dim - 2)
    conv('proposal_margin_pred', embed_dim)
    conv('pixel_spatial_embed_pred', 2)
    conv('pixel_other_embed_pred', embed_dim - 2)
    for i in range(5):
        sd[f'{head}.scales.{i}.scale'] = torch.tensor(1.0 + i)
        sd[f'{head}.margin_scales.{i}.scale'] = torch.tensor(0.5 + i)
    sd[f'{head}.position_scale.scale'] = torch.tensor(3.0)
    return OrderedDict((f'module.{k}', v) for k, v in sd.items())


@pytest.fixture(scope='module')
def converted():
    official = official_r50_v3_state_dict()
    sd, unmapped = load_converter().convert(official)
    return official, sd, unmapped


def test_every_key_maps_and_the_v3_model_loads_strictly(converted):
    official, sd, unmapped = converted
    assert unmapped == []
    model = MODELS.build(get_detector_cfg(V3_CONFIG))
    model.load_state_dict(sd, strict=True)
    head, mask_head = model.bbox_head, model.mask_head
    o = lambda k: official[f'module.rpn.head.{k}']  # noqa: E731
    torch.testing.assert_close(
        head.conv_embed.weight,
        torch.cat([o('proposal_spatial_embed_pred.weight'),
                   o('proposal_other_embed_pred.weight')]))
    torch.testing.assert_close(
        mask_head.conv_pixel.bias,
        torch.cat([o('pixel_spatial_embed_pred.bias'),
                   o('pixel_other_embed_pred.bias')]))
    torch.testing.assert_close(head.conv_margin.weight,
                               o('proposal_margin_pred.weight'))
    torch.testing.assert_close(head.cls_convs[2].conv.weight,
                               o('cls_tower.6.weight'))
    torch.testing.assert_close(head.reg_convs[3].gn.bias,
                               o('bbox_tower.10.bias'))
    torch.testing.assert_close(mask_head.mask_convs[1].conv.weight,
                               o('mask_tower.3.weight'))
    torch.testing.assert_close(head.conv_cls.weight, o('cls_logits.weight'))
    assert head.scales[4].scale.item() == 5.0
    assert head.margin_scales[1].scale.item() == 1.5
    assert mask_head.position_scale.scale.item() == 3.0
    torch.testing.assert_close(
        model.neck.lateral_convs[0].conv.weight,
        official['module.backbone.fpn.fpn_inner2.weight'])
    torch.testing.assert_close(
        model.neck.fpn_convs[3].conv.weight,
        official['module.backbone.fpn.top_blocks.p6.weight'])
    torch.testing.assert_close(
        model.backbone.layer3[0].downsample[1].running_var,
        official['module.backbone.body.layer3.0.downsample.1.running_var'])


def test_cli_reports_unmapped_and_mismatched_keys(tmp_path, converted,
                                                  capsys):
    official = official_r50_v3_state_dict()
    official['module.rpn.head.extra_layer.weight'] = torch.zeros(3)
    official['module.rpn.head.cls_logits.weight'] = torch.zeros(
        81, 256, 3, 3)
    src = tmp_path / 'official.pth'
    torch.save({'model': official, 'iteration': 90000}, src)
    dst = tmp_path / 'ours.pth'
    converter = load_converter()
    config = osp.join(get_repo_root(), 'configs', V3_CONFIG)
    assert converter.main([str(src), str(dst), '--config', config]) == 1
    out = capsys.readouterr().out
    assert 'unmapped official key: rpn.head.extra_layer.weight' in out
    assert 'shape mismatch: bbox_head.conv_cls.weight' in out
    assert not dst.exists()
    assert converter.main(
        [str(src), str(dst), '--config', config, '--allow-partial']) == 0
    assert dst.exists()


def test_cli_round_trip_loads_with_mmengine(tmp_path):
    src = tmp_path / 'official.pth'
    torch.save({'model': official_r50_v3_state_dict()}, src)
    dst = tmp_path / 'ours.pth'
    config = osp.join(get_repo_root(), 'configs', V3_CONFIG)
    assert load_converter().main([str(src), str(dst), '--config',
                                  config]) == 0
    from mmengine.runner import load_checkpoint
    model = MODELS.build(get_detector_cfg(V3_CONFIG))
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
