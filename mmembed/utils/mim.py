# Copyright (c) mmembed authors. All rights reserved.
"""Make ``mmembed::`` config paths resolve in mmengine.

mmengine resolves ``_base_ = '<pkg>::<path>'`` (and ``Config.fromfile`` /
``get_config('<pkg>::...')``) only for packages in its hard-coded table
``mmengine.config.utils.MODULE2PACKAGE`` (module name -> pip distribution
name), and then reads ``<installed package>/.mim/configs/<path>``.
:func:`register_mim_package` adds mmembed to that table; ``import mmembed``
calls it. ``setup.py`` puts the configs into ``mmembed/.mim``.

The table is consulted while a config file is *parsed*, so mmembed must be
imported before the config that names ``mmembed::`` is read. A config's own
``custom_imports`` runs only after parsing, too late for its ``_base_``; see
docs/use_in_your_project.md for the entry points that do it right.

mmengine finds the package folder with ``mmengine.utils.get_installed_path``,
which joins the *distribution's* location with the module name. For an
editable install (``pip install -e .`` with setuptools >= 64, which serves a
flat-layout project through an import hook) that location is
``site-packages``, where no ``mmembed/`` folder exists, so both ``mmembed::``
paths and ``read_base`` imports of ``mmembed.configs`` would point at
nothing. :func:`register_mim_package` therefore also makes mmengine's config
parser answer ``get_installed_path('mmembed')`` with the folder of the
mmembed that is actually imported; other packages are left to mmengine.
"""
import functools
import os.path as osp
from typing import Callable

MIM_SCOPE = 'mmembed'  # the ``mmembed::`` prefix = the module name
DISTRIBUTION = 'mmembed'  # the pip distribution name (setup.py ``name``)


def register_mim_package() -> None:
    """Add ``mmembed`` to mmengine's ``MODULE2PACKAGE`` table (idempotent).

    ``MODULE2PACKAGE`` and its deprecated alias ``PKG2PROJECT`` are one dict
    object, shared by mmengine's config parser and ``BaseInferencer``, so an
    in-place update reaches every user of it.

    Raises:
        RuntimeError: when another distribution already claims the
            ``mmembed`` module name in that table.
    """
    from mmengine.config import utils as config_utils

    table = config_utils.MODULE2PACKAGE
    registered = table.setdefault(MIM_SCOPE, DISTRIBUTION)
    if registered != DISTRIBUTION:
        raise RuntimeError(
            f'mmengine.config.utils.MODULE2PACKAGE maps {MIM_SCOPE!r} to '
            f'{registered!r}, expected {DISTRIBUTION!r}; something else '
            'registered the mmembed:: scope')
    _route_installed_path()


def _package_dir() -> str:
    """The folder of the imported mmembed package."""
    return osp.dirname(osp.dirname(osp.abspath(__file__)))


def _wrap_get_installed_path(original: Callable[[str], str]) -> Callable:
    if getattr(original, '_mmembed_routed', False):
        return original

    @functools.wraps(original)
    def get_installed_path(package: str) -> str:
        # the configs that belong to the mmembed code in use, wherever and
        # however it was installed
        if package in (MIM_SCOPE, DISTRIBUTION):
            return _package_dir()
        return original(package)

    get_installed_path._mmembed_routed = True  # type: ignore[attr-defined]
    return get_installed_path


def _route_installed_path() -> None:
    """Route mmengine's ``get_installed_path('mmembed')`` (as bound in the
    config parser and in ``mmengine.hub``) to :func:`_package_dir`."""
    import mmengine.config.config as config_module
    import mmengine.hub.hub as hub_module

    for module in (config_module, hub_module):
        module.get_installed_path = _wrap_get_installed_path(
            module.get_installed_path)


def mim_dir() -> str:
    """``<mmembed package>/.mim``: configs, tools, demo, model-index.yml.

    Raises:
        FileNotFoundError: when the folder is missing, i.e. mmembed was
            installed without it (an editable install made before
            ``setup.py`` created it: re-run ``pip install -e .``).
    """
    path = osp.join(_package_dir(), '.mim')
    if not osp.isdir(osp.join(path, 'configs')):
        raise FileNotFoundError(
            f'{path}/configs not found: this mmembed install carries no '
            'configs. Reinstall it (pip install . for a wheel, or pip '
            'install --no-build-isolation -e . in a checkout).')
    return path
