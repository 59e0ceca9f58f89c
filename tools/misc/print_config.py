# Copyright (c) mmembed authors. All rights reserved.
"""Print a config after inheritance and ``--cfg-options``.

Usage::

    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...]
        [--save-path OUT.py|.json|.yml]

mmembed is imported first, so configs naming mmembed components resolve
even without ``custom_imports``. ``${key}`` references are replaced by their
values (mmdet's ``replace_cfg_vals``). Works for both config styles: the
``_base_`` ones under ``configs/`` and the pure-Python (``read_base``) ones
under ``mmembed/configs/``, whose values are classes.
"""
import argparse
import os
import os.path as osp

# First: registers mmembed's components into mmdet's registries.
import mmembed  # noqa: F401  isort:skip
from mmembed.utils.cli_utils import run_main
from mmembed.utils.config_utils import missing_file_message
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
        parser.error(missing_file_message(args.config))
    if args.save_path is not None and not args.save_path.endswith(
            ('.py', '.json', '.yml')):
        parser.error(f'--save-path must end in .py, .json or .yml, got '
                     f'{args.save_path!r}')
    return args


def replace_values(cfg: Config) -> Config:
    """mmdet's ``replace_cfg_vals``, also for pure-Python configs.

    A ``read_base`` config holds its imported classes as mmengine
    ``LazyObject`` s, and ``pretty_text`` prints them by name.
    ``replace_cfg_vals`` reads every value, which builds the lazy objects
    into classes, and rebuilds the ``Config`` without ``_imported_names``;
    ``pretty_text`` then writes ``type=<class ...>`` and fails
    (``SyntaxError: Failed to format the config file``). Reading with
    ``ConfigDict.lazy`` set (as ``Config.fromfile`` does for such configs)
    keeps the lazy objects.
    """
    from mmdet.utils import replace_cfg_vals
    from mmengine.config import ConfigDict
    imported_names = getattr(cfg, '_imported_names', set())
    if not imported_names:
        return replace_cfg_vals(cfg)
    ConfigDict.lazy = True
    try:
        updated = replace_cfg_vals(cfg)
    finally:
        ConfigDict.lazy = False
    object.__setattr__(updated, '_imported_names', imported_names)
    return updated


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = replace_values(Config.fromfile(args.config))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path is not None:
        out_dir = osp.dirname(osp.abspath(args.save_path))
        os.makedirs(out_dir, exist_ok=True)
        cfg.dump(args.save_path)
        print(f'Config saved to {args.save_path}')


if __name__ == '__main__':
    run_main(main, 'print_config.py')
