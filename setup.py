# Copyright (c) mmembed authors. All rights reserved.
"""mmembed: instance-segmentation components for MMDetection 3.x.

Install with ``make install`` (builds mmcv with its ops, see
docs/get_started.md) or, in an environment that already has torch, mmcv with
ops, mmengine and mmdet: ``pip install --no-build-isolation -e .``.

Like mmdet, the package carries its configs, tools, demo and
``model-index.yml`` under ``mmembed/.mim/`` so that an installed (non
editable) mmembed can serve ``_base_ = 'mmembed::embedmask/...'`` and its
tools (docs/use_in_your_project.md):

* a wheel or sdist build copies them into the *build* tree (``build_py``
  below), never into the checkout;
* an editable install (``pip install -e .``) links
  ``mmembed/.mim/<item>`` to the checkout's ``<item>`` (relative symlinks,
  ignored by git), so edits to ``configs/`` are seen at once. Where symlinks
  are not possible (Windows without developer mode) the items are copied.
"""
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
# what mmembed/.mim holds: the same set as mmdet's add_mim_extension
MIM_ITEMS = ('configs', 'tools', 'demo', 'model-index.yml')
# never shipped from those folders
MIM_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.pth',
                                    'work_dirs')


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmembed', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def read_requirements(name: str) -> list:
    path = osp.join(HERE, 'requirements', name)
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


def _remove(path: str) -> None:
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def copy_mim_items(dst_dir: str) -> None:
    """Copy :data:`MIM_ITEMS` from the source tree into ``dst_dir``."""
    os.makedirs(dst_dir, exist_ok=True)
    for item in MIM_ITEMS:
        src = osp.join(HERE, item)
        if not osp.exists(src):
            raise FileNotFoundError(
                f'setup.py: {src} is missing; it must be shipped in '
                'mmembed/.mim (build from a full checkout or sdist)')
        dst = osp.join(dst_dir, item)
        _remove(dst)
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=MIM_IGNORE)
        else:
            shutil.copyfile(src, dst)


def link_mim_items(dst_dir: str) -> None:
    """Point ``dst_dir/<item>`` at the checkout's items (editable installs);
    copies where the platform cannot make symlinks."""
    os.makedirs(dst_dir, exist_ok=True)
    for item in MIM_ITEMS:
        src = osp.join(HERE, item)
        dst = osp.join(dst_dir, item)
        _remove(dst)
        try:
            os.symlink(osp.relpath(src, dst_dir), dst)
        except OSError:
            copy_mim_items(dst_dir)
            return


class BuildPyWithMim(build_py):
    """``build_py`` that also provides ``mmembed/.mim`` (see the module
    docstring): copied into the build tree for wheels, linked in the source
    tree for editable installs."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            link_mim_items(osp.join(HERE, 'mmembed', '.mim'))
        else:
            copy_mim_items(osp.join(self.build_lib, 'mmembed', '.mim'))


setup(
    name='mmembed',
    version=read_version(),
    description='EmbedMask, BlendMask, ISTR and SharpMask as MMDetection 3.x '
    'components',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(exclude=('configs', 'configs.*', 'tools',
                                    'tools.*', 'demo', 'tests', 'tests.*',
                                    'benchmarks', 'benchmarks.*', 'docs',
                                    'docs.*', 'projects', 'projects.*')),
    # mmembed/configs holds pure-Python (read_base) configs: plain modules,
    # found by find_packages through their __init__.py files.
    cmdclass={'build_py': BuildPyWithMim},
    # `mmembed train|test|export-onnx ...` runs the tools in mmembed/.mim
    entry_points={'console_scripts': ['mmembed=mmembed.cli:main']},
    python_requires='>=3.8',
    # torch, mmcv (with ops) and mmdet are installed by `make install`; mmcv
    # must be built against the installed torch, which pip cannot express.
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        'mim': read_requirements('mminstall.txt'),
    },
    zip_safe=False)
