# Copyright (c) mmembed authors. All rights reserved.
"""The plumbing every checkpoint converter in ``tools/model_converters``
shares: safe loading of the official file, checking the converted keys and
shapes against an mmembed model, and writing the result.

Each converter keeps only what is its own: the key mapping (``convert``)
and its command-line options.
"""
import argparse
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

ConvertFn = Callable[[Dict[str, Tensor], argparse.Namespace],
                     Tuple[Dict[str, Tensor], List[str]]]


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


def converter_main(argv: Optional[Sequence[str]], *, description: str,
                   source: str, config_example: str, converter: str,
                   convert: ConvertFn,
                   add_arguments: Optional[Callable[
                       [argparse.ArgumentParser], None]] = None) -> int:
    """The command line of a converter: ``SRC DST [--config CFG]
    [--allow-partial]`` plus the converter's own options.

    Nothing is written when a key is unmapped or the ``--config`` check finds
    a problem, unless ``--allow-partial``; returns the exit code.
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

    converted, unmapped = convert(load_source_state_dict(args.src), args)
    problems = [f'unmapped {source} key: {k}' for k in unmapped]
    if args.config:
        problems += check_against_model(converted, args.config)
    for line in problems:
        print(line)
    print(f'converted {len(converted)} tensors, {len(problems)} problem(s)')
    if problems and not args.allow_partial:
        print('nothing written (use --allow-partial to write anyway)')
        return 1
    torch.save(
        dict(
            state_dict=converted,
            meta=dict(source=args.src, converter=converter)), args.dst)
    print(f'wrote {args.dst}')
    return 0
