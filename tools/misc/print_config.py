# Copyright (c) mmembed authors. All rights reserved.
"""Print a config after inheritance and ``--cfg-options``.

Usage::

    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...]
        [--save-path OUT.py|.json|.yml]

mmembed is imported first, so configs naming mmembed components resolve
even without ``custom_imports``. ``${key}`` references are replaced by their
values (mmdet's ``replace_cfg_vals``).
"""
import argparse
import os
import os.path as osp

# First: registers mmembed's components into mmdet's registries.
import mmembed  # noqa: F401  isort:skip
from mmengine.config import Config, DictAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--save-path',
        default=None,
        help='also save the whole config here (.py, .json or .yml)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, as key=value pairs merged into the '
        'config')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config!r} does not exist')
    if args.save_path is not None and not args.save_path.endswith(
            ('.py', '.json', '.yml')):
        parser.error(f'--save-path must end in .py, .json or .yml, got '
                     f'{args.save_path!r}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmdet.utils import replace_cfg_vals
    cfg = Config.fromfile(args.config)
    cfg = replace_cfg_vals(cfg)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path is not None:
        out_dir = osp.dirname(osp.abspath(args.save_path))
        os.makedirs(out_dir, exist_ok=True)
        cfg.dump(args.save_path)
        print(f'Config saved to {args.save_path}')


if __name__ == '__main__':
    main()
