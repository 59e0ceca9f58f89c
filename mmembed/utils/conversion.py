# Copyright (c) mmembed authors. All rights reserved.
"""The plumbing every checkpoint converter in ``tools/model_converters``
shares: safe loading of the official file, checking the converted keys and
shapes against an mmembed model, and writing the result.

Each converter keeps only what is its own: the key mapping (``convert``)
and its command-line options, and, for a source that is not a PyTorch
checkpoint (the Torch7 SharpMask release), its loader (``load``).
"""
import argparse
import sys
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

# (what ``load`` returned: a state dict by default, args) ->
# (converted state dict, source keys or modules that could not be mapped)
ConvertFn = Callable[[Any, argparse.Namespace], Tuple[Dict[str, Tensor],
                                                      List[str]]]


def load_source_state_dict(path: str) -> Dict[str, Tensor]:
    """The state dict of an official checkpoint, loaded with
    ``weights_only=True`` (official files hold tensors, arrays and small
    Python values). Non-tensor values (detectron2 stores numpy arrays)
    become tensors."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    state_dict = checkpoint.get('model', checkpoint.get('state_dict',
                                                        checkpoint))
    return OrderedDict(
        (k, v if isinstance(v, Tensor) else torch.as_tensor(v))
        for k, v in state_dict.items())


def check_against_model(converted: Dict[str, Tensor],
                        config: str) -> List[str]:
    """Problems loading ``converted`` into the model of ``config``: keys the
    model lacks, shape mismatches, and model keys the checkpoint lacks."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from mmembed.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model_sd = MODELS.build(cfg.model).state_dict()
    problems = []
    for key, value in converted.items():
        if key not in model_sd:
            problems.append(f'unexpected in model: {key}')
        elif model_sd[key].shape != value.shape:
            problems.append(f'shape mismatch: {key} checkpoint '
                            f'{tuple(value.shape)} vs model '
                            f'{tuple(model_sd[key].shape)}')
    problems += [f'missing from checkpoint: {k}' for k in model_sd
                 if k not in converted]
    return problems


def converter_main(argv: Optional[Sequence[str]],
                   *,
                   description: str,
                   source: str,
                   config_example: str,
                   converter: str,
                   convert: ConvertFn,
                   add_arguments: Optional[Callable[
                       [argparse.ArgumentParser], None]] = None,
                   load: Callable[[str], Any] = load_source_state_dict,
                   extra_meta: Optional[Callable[[Any], dict]] = None,
                   unmapped_what: str = 'key') -> int:
    """The command line of a converter: ``SRC DST [--config CFG]
    [--allow-partial]`` plus the converter's own options.

    Loads ``SRC`` with ``load``, converts it with ``convert``, checks the
    result against ``--config``'s model, and writes ``{state_dict, meta}``.
    Nothing is written when something is unmapped or the ``--config`` check
    finds a problem, unless ``--allow-partial``; returns the exit code (0
    written, 1 problems, 2 ``load`` needs a package that is not installed).

    Args:
        argv: the arguments (None: ``sys.argv[1:]``).
        description, config_example: for ``--help``.
        source: what SRC is, in ``--help`` and in the problem lines
            (``unmapped {source} {unmapped_what}: ...``).
        converter: the converter's name, stored in ``meta``.
        convert: (what ``load`` returned, args) -> (state dict, unmapped).
        add_arguments: adds the converter's own options to the parser.
        load: SRC path -> what ``convert`` takes. Default: the checkpoint's
            state dict (:func:`load_source_state_dict`). An ``ImportError``
            it raises (a reader package missing) is printed to stderr, exit
            code 2.
        extra_meta: what ``load`` returned -> more ``meta`` entries (e.g.
            the release's training configuration).
        unmapped_what: what ``convert``'s unmapped entries are ('key',
            'module').
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=f'{source} checkpoint')
    parser.add_argument('dst', help='output mmembed checkpoint')
    parser.add_argument(
        '--config',
        help='mmembed config to check keys and shapes against, e.g. '
        f'{config_example}')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='write the output even if keys are unmapped or mismatched')
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)

    try:
        loaded = load(args.src)
    except ImportError as err:
        print(err, file=sys.stderr)
        return 2
    converted, unmapped = convert(loaded, args)
    problems = [f'unmapped {source} {unmapped_what}: {k}' for k in unmapped]
    if args.config:
        problems += check_against_model(converted, args.config)
    for line in problems:
        print(line)
    print(f'converted {len(converted)} tensors, {len(problems)} problem(s)')
    if problems and not args.allow_partial:
        print('nothing written (use --allow-partial to write anyway)')
        return 1
    meta = dict(source=args.src, converter=converter)
    if extra_meta is not None:
        meta.update(extra_meta(loaded))
    torch.save(dict(state_dict=converted, meta=meta), args.dst)
    print(f'wrote {args.dst}')
    return 0
