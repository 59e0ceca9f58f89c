# Copyright (c) mmembed authors. All rights reserved.
"""mmembed: instance-segmentation components for MMDetection 3.x.

Install with ``make install`` (builds mmcv with its ops, see
docs/get_started.md) or, in an environment that already has torch, mmcv with
ops, mmengine and mmdet: ``pip install --no-build-isolation -e .``.
"""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


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


setup(
    name='mmembed',
    version=read_version(),
    description='EmbedMask, BlendMask, ISTR and SharpMask as MMDetection 3.x '
    'components',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(exclude=('configs', 'tools', 'demo', 'tests',
                                    'benchmarks', 'docs')),
    python_requires='>=3.8',
    # torch, mmcv (with ops) and mmdet are installed by `make install`; mmcv
    # must be built against the installed torch, which pip cannot express.
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        'mim': read_requirements('mminstall.txt'),
    },
    zip_safe=False)
