# Copyright (c) mmembed authors. All rights reserved.
"""The ``mmembed`` registry scope: one child of each of mmdet's registries.

mmembed's components register into mmdet's registries and configs keep
``default_scope = 'mmdet'`` (docs/architecture.md). This module exists for
one reason: mmengine marks every dict a config inherits through an
``mmembed::`` base with ``_scope_='mmembed'``, and then builds it in the
registry of that scope (``Registry.switch_scope_and_registry`` imports
``mmembed.registry`` and searches the registry tree for scope
``'mmembed'``). Without these children it would fall back to mmengine's root
registries, where neither mmdet's nor mmembed's components are.

Each child registers nothing itself; lookups fall through to its mmdet
parent, so ``type='EmbedMask'``, ``'FCOS'`` or ``'mmdet.FCOS'`` resolve
exactly as in the ``mmdet`` scope. Register new components into
``mmdet.registry`` as before.
"""
from mmdet import registry as mmdet_registry
from mmengine.registry import Registry

SCOPE = 'mmembed'


def _child(parent: Registry) -> Registry:
    # importing mmembed.models registers everything (into mmdet's registries)
    return Registry(
        parent.name, parent=parent, scope=SCOPE,
        locations=['mmembed.models'])


RUNNERS = _child(mmdet_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmdet_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmdet_registry.LOOPS)
HOOKS = _child(mmdet_registry.HOOKS)
DATASETS = _child(mmdet_registry.DATASETS)
DATA_SAMPLERS = _child(mmdet_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmdet_registry.TRANSFORMS)
MODELS = _child(mmdet_registry.MODELS)
MODEL_WRAPPERS = _child(mmdet_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmdet_registry.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mmdet_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmdet_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmdet_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmdet_registry.PARAM_SCHEDULERS)
METRICS = _child(mmdet_registry.METRICS)
EVALUATOR = _child(mmdet_registry.EVALUATOR)
TASK_UTILS = _child(mmdet_registry.TASK_UTILS)
VISUALIZERS = _child(mmdet_registry.VISUALIZERS)
VISBACKENDS = _child(mmdet_registry.VISBACKENDS)
LOG_PROCESSORS = _child(mmdet_registry.LOG_PROCESSORS)
