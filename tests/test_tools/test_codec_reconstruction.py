# Copyright (c) mmembed authors. All rights reserved.
"""tools/analysis_tools/codec_reconstruction.py on masks drawn here."""
import importlib.util
import os.path as osp

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    path = osp.join(REPO, 'tools/analysis_tools/codec_reconstruction.py')
    spec = importlib.util.spec_from_file_location('codec_reconstruction',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_more_dims_reconstruct_a_disc_better():
    yy, xx = torch.meshgrid(torch.arange(56.), torch.arange(56.),
                            indexing='ij')
    disc = ((yy - 27.5)**2 + (xx - 27.5)**2 <= 20**2).float()
    square = torch.zeros(56, 56)
    square[10:40, 5:50] = 1
    ious = load_tool().reconstruction_iou(torch.stack([disc, square]),
                                          (4, 64, 256), 0.45)
    assert ious[4] < ious[64] < ious[256] <= 1.0
    assert ious[256] > 0.95
