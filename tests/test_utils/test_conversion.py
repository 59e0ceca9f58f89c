# Copyright (c) mmembed authors. All rights reserved.
"""converter_main, the command line every checkpoint converter shares: the
default loader (a PyTorch checkpoint's state dict), a converter's own
loader (the load hook the Torch7 converter uses), extra meta, the problem
lines and the exit codes."""
import torch

from mmembed.utils.conversion import converter_main

COMMON = dict(description='test converter', config_example='cfg.py',
              converter='test_converter')


def rename(state_dict, args):
    """a.* -> backbone.*; anything else is unmapped."""
    out = {f'backbone.{k[2:]}': v for k, v in state_dict.items()
           if k.startswith('a.')}
    return out, [k for k in state_dict if not k.startswith('a.')]


def test_default_load_reads_the_checkpoints_state_dict(tmp_path):
    src, dst = tmp_path / 'official.pth', tmp_path / 'out.pth'
    weight = torch.randn(3, 2)
    torch.save(dict(model={'a.w': weight, 'a.n': 5}), src)
    assert converter_main([str(src), str(dst)], source='official',
                          convert=rename, **COMMON) == 0
    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta'] == dict(source=str(src),
                                      converter='test_converter')
    assert torch.equal(checkpoint['state_dict']['backbone.w'], weight)
    # non-tensor values become tensors (detectron2 stores numpy arrays)
    assert torch.equal(checkpoint['state_dict']['backbone.n'],
                       torch.tensor(5))


def test_load_hook_feeds_convert_and_extra_meta(tmp_path, capsys):
    """A source that is not a PyTorch checkpoint: ``load`` reads it,
    ``convert`` gets what ``load`` returned, ``extra_meta`` adds to meta;
    unmapped entries are reported with ``unmapped_what``."""
    dst = tmp_path / 'out.pth'
    release = dict(weights={'a.w': torch.ones(2), 'net.mul': torch.ones(1)},
                   config=dict(km=32))
    loaded_from = []

    def load(path):
        loaded_from.append(path)
        return release

    kwargs = dict(
        source='release', load=load, unmapped_what='module',
        convert=lambda obj, args: rename(obj['weights'], args),
        extra_meta=lambda obj: dict(release_config=obj['config']), **COMMON)
    assert converter_main(['model.t7', str(dst)], **kwargs) == 1
    out = capsys.readouterr().out
    assert 'unmapped release module: net.mul' in out
    assert 'nothing written' in out and not dst.exists()
    assert loaded_from == ['model.t7']
    assert converter_main(['model.t7', str(dst), '--allow-partial'],
                          **kwargs) == 0
    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta'] == dict(
        source='model.t7', converter='test_converter',
        release_config=dict(km=32))
    assert list(checkpoint['state_dict']) == ['backbone.w']


def test_a_loader_missing_its_package_exits_2(tmp_path, capsys):
    def load(path):
        raise ImportError('reading this needs the torchfile package')

    assert converter_main(
        ['model.t7', str(tmp_path / 'out.pth')], source='release',
        load=load, convert=rename, **COMMON) == 2
    assert 'needs the torchfile package' in capsys.readouterr().err
    assert not (tmp_path / 'out.pth').exists()
