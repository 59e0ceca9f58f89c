# Copyright (c) mmembed authors. All rights reserved.
"""The AdelaiDet BlendMask converter on state dicts built here with the
official key names and shapes (specs/methods.md 2.6), loaded strictly."""
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmdet.registry import MODELS

from mmembed.testing import get_detector_cfg, get_repo_root

R50_1X = 'blendmask/blendmask_r50_fpn_1x_coco.py'
R50_550 = 'blendmask/blendmask_r50_fpn_550_3x_coco.py'


def load_converter():
    path = osp.join(get_repo_root(), 'tools', 'model_converters',
                    'blendmask_adet_to_mmembed.py')
    spec = importlib.util.spec_from_file_location('blendmask_converter', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def norm(sd, prefix, channels, counter=False):
    for name in ('weight', 'bias', 'running_mean', 'running_var'):
        sd[f'{prefix}.{name}'] = torch.randn(channels)
    if counter:  # nn.BatchNorm2d / SyncBatchNorm, unlike FrozenBN
        sd[f'{prefix}.num_batches_tracked'] = torch.tensor(7)


def adelaidet_state_dict(real_time=False, old_ctr_name=False,
                         num_classes=80):
    """Key names and shapes of AdelaiDet BlendMask R_50_1x (or, with
    ``real_time``, 550_R_50_3x: P3-P6, 3 shared tower convs, no cls / box
    tower convs, 2 basis convs), written out from the spec."""
    torch.manual_seed(0)
    sd = OrderedDict()
    bb = 'backbone.bottom_up'
    sd[f'{bb}.stem.conv1.weight'] = torch.randn(64, 3, 7, 7)
    norm(sd, f'{bb}.stem.conv1.norm', 64)
    in_ch = 64
    for stage, (blocks, width) in enumerate(
        [(3, 64), (4, 128), (6, 256), (3, 512)], start=2):
        for block in range(blocks):
            p = f'{bb}.res{stage}.{block}'
            if block == 0:
                sd[f'{p}.shortcut.weight'] = torch.randn(
                    width * 4, in_ch, 1, 1)
                norm(sd, f'{p}.shortcut.norm', width * 4)
            sd[f'{p}.conv1.weight'] = torch.randn(width, in_ch, 1, 1)
            norm(sd, f'{p}.conv1.norm', width)
            sd[f'{p}.conv2.weight'] = torch.randn(width, width, 3, 3)
            norm(sd, f'{p}.conv2.norm', width)
            sd[f'{p}.conv3.weight'] = torch.randn(width * 4, width, 1, 1)
            norm(sd, f'{p}.conv3.norm', width * 4)
            in_ch = width * 4
    for level, channels in zip((3, 4, 5), (512, 1024, 2048)):
        sd[f'backbone.fpn_lateral{level}.weight'] = torch.randn(
            256, channels, 1, 1)
        sd[f'backbone.fpn_lateral{level}.bias'] = torch.randn(256)
        sd[f'backbone.fpn_output{level}.weight'] = torch.randn(
            256, 256, 3, 3)
        sd[f'backbone.fpn_output{level}.bias'] = torch.randn(256)
    for top in (('p6', ) if real_time else ('p6', 'p7')):
        sd[f'backbone.top_block.{top}.weight'] = torch.randn(256, 256, 3, 3)
        sd[f'backbone.top_block.{top}.bias'] = torch.randn(256)
    head = 'proposal_generator.fcos_head'
    towers = {'share_tower': 3} if real_time else {'cls_tower': 4,
                                                   'bbox_tower': 4}
    for tower, num in towers.items():
        for i in range(num):
            sd[f'{head}.{tower}.{3 * i}.weight'] = torch.randn(256, 256, 3, 3)
            sd[f'{head}.{tower}.{3 * i}.bias'] = torch.randn(256)
            sd[f'{head}.{tower}.{3 * i + 1}.weight'] = torch.randn(256)
            sd[f'{head}.{tower}.{3 * i + 1}.bias'] = torch.randn(256)
    for name, out in (('cls_logits', num_classes), ('bbox_pred', 4),
                      ('centerness' if old_ctr_name else 'ctrness', 1)):
        sd[f'{head}.{name}.weight'] = torch.randn(out, 256, 3, 3)
        sd[f'{head}.{name}.bias'] = torch.randn(out)
    sd['top_layer.weight'] = torch.randn(4 * 14 * 14, 256, 3, 3)
    sd['top_layer.bias'] = torch.randn(4 * 14 * 14)
    basis = 'basis_module'
    for i in range(3):  # conv (no bias: SyncBN follows) + SyncBN
        sd[f'{basis}.refine.{i}.0.weight'] = torch.randn(128, 256, 3, 3)
        norm(sd, f'{basis}.refine.{i}.1', 128, counter=True)
    num_convs = 2 if real_time else 3
    for i in [*range(num_convs), num_convs + 1]:  # Upsample at num_convs
        sd[f'{basis}.tower.{i}.0.weight'] = torch.randn(128, 128, 3, 3)
        norm(sd, f'{basis}.tower.{i}.1', 128, counter=True)
    sd[f'{basis}.tower.{num_convs + 2}.weight'] = torch.randn(4, 128, 1, 1)
    sd[f'{basis}.tower.{num_convs + 2}.bias'] = torch.randn(4)
    sd[f'{basis}.seg_head.0.weight'] = torch.randn(128, 256, 3, 3)
    norm(sd, f'{basis}.seg_head.1', 128, counter=True)
    sd[f'{basis}.seg_head.3.weight'] = torch.randn(128, 128, 3, 3)
    norm(sd, f'{basis}.seg_head.4', 128, counter=True)
    sd[f'{basis}.seg_head.6.weight'] = torch.randn(num_classes + 1, 128, 1,
                                                   1)
    sd[f'{basis}.seg_head.6.bias'] = torch.randn(num_classes + 1)
    return sd


@pytest.mark.parametrize('fname,real_time,old_ctr_name',
                         [(R50_1X, False, False), (R50_1X, False, True),
                          (R50_550, True, False)])
def test_every_key_maps_and_the_model_loads_strictly(fname, real_time,
                                                     old_ctr_name):
    official = adelaidet_state_dict(real_time, old_ctr_name)
    sd, unmapped = load_converter().convert(official)
    assert unmapped == []
    model = MODELS.build(get_detector_cfg(fname))
    model.load_state_dict(sd, strict=True)
    head, mask_head = model.bbox_head, model.mask_head
    o = official.__getitem__
    torch.testing.assert_close(head.conv_attn.weight, o('top_layer.weight'))
    ctr = 'centerness' if old_ctr_name else 'ctrness'
    torch.testing.assert_close(
        head.conv_centerness.bias,
        o(f'proposal_generator.fcos_head.{ctr}.bias'))
    if real_time:
        torch.testing.assert_close(
            head.share_convs[2].gn.weight,
            o('proposal_generator.fcos_head.share_tower.7.weight'))
        assert len(head.scales) == 4
    else:
        torch.testing.assert_close(
            head.reg_convs[3].conv.weight,
            o('proposal_generator.fcos_head.bbox_tower.9.weight'))
        assert len(head.scales) == 5
    assert all(float(s.scale) == 1.0 for s in head.scales)
    torch.testing.assert_close(mask_head.refine[1].bn.running_mean,
                               o('basis_module.refine.1.1.running_mean'))
    last = len(mask_head.tower) - 1
    torch.testing.assert_close(mask_head.tower[last].weight,
                               o(f'basis_module.tower.{last}.weight'))
    torch.testing.assert_close(
        mask_head.tower[last - 1].conv.weight,
        o(f'basis_module.tower.{last - 1}.0.weight'))
    torch.testing.assert_close(mask_head.seg_head[1].bn.bias,
                               o('basis_module.seg_head.4.bias'))
    torch.testing.assert_close(mask_head.seg_head[2].weight,
                               o('basis_module.seg_head.6.weight'))
    torch.testing.assert_close(
        model.backbone.layer2[0].downsample[1].running_var,
        o('backbone.bottom_up.res3.0.shortcut.norm.running_var'))
    torch.testing.assert_close(model.backbone.bn1.weight,
                               o('backbone.bottom_up.stem.conv1.norm.weight'))
    torch.testing.assert_close(model.neck.lateral_convs[2].conv.weight,
                               o('backbone.fpn_lateral5.weight'))
    torch.testing.assert_close(model.neck.fpn_convs[3].conv.weight,
                               o('backbone.top_block.p6.weight'))


def test_cli_reports_unmapped_and_mismatched_keys(tmp_path, capsys):
    official = adelaidet_state_dict()
    official['basis_module.extra.weight'] = torch.zeros(3)
    official['top_layer.weight'] = torch.zeros(4 * 7 * 7, 256, 3, 3)
    src = tmp_path / 'adet.pth'
    torch.save({'model': official, 'iteration': 90000}, src)
    dst = tmp_path / 'ours.pth'
    converter = load_converter()
    config = osp.join(get_repo_root(), 'configs', R50_1X)
    assert converter.main([str(src), str(dst), '--config', config]) == 1
    out = capsys.readouterr().out
    assert 'unmapped AdelaiDet key: basis_module.extra.weight' in out
    assert 'shape mismatch: bbox_head.conv_attn.weight' in out
    assert not dst.exists()
    assert converter.main(
        [str(src), str(dst), '--config', config, '--allow-partial']) == 0
    assert dst.exists()


def test_cli_round_trip_loads_with_mmengine(tmp_path):
    src = tmp_path / 'adet.pth'
    torch.save({'model': adelaidet_state_dict()}, src)
    dst = tmp_path / 'ours.pth'
    config = osp.join(get_repo_root(), 'configs', R50_1X)
    assert load_converter().main([str(src), str(dst), '--config',
                                  config]) == 0
    from mmengine.runner import load_checkpoint
    model = MODELS.build(get_detector_cfg(R50_1X))
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
