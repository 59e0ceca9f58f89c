# Copyright (c) mmembed authors. All rights reserved.
"""tools/analysis_tools/vis_istr_codec.py draws the codec picture."""
import importlib.util
import os.path as osp

import pytest

from mmembed.testing import get_repo_root, get_shared_data_root

COCO128 = osp.join(get_shared_data_root(), 'coco128', 'annotations',
                   'instances_train2017.json')


@pytest.mark.skipif(not osp.isfile(COCO128), reason='coco128 not found')
def test_vis_istr_codec_writes_a_png(tmp_path, capsys):
    path = osp.join(get_repo_root(), 'tools', 'analysis_tools',
                    'vis_istr_codec.py')
    spec = importlib.util.spec_from_file_location('vis_istr_codec', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / 'codec.png'
    module.main([COCO128, '--out', str(out), '--num-masks', '3'])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'wrote' in capsys.readouterr().out
