# Copyright (c) mmembed authors. All rights reserved.
"""Train only some modules of a model: SharpMask's second training stage.

The release (``TrainerSharpMask.lua``, specs/methods.md section 4.3) trains
the refinement modules on top of a converged, frozen DeepMask: only
``refs`` are updated and the trunk is not back-propagated. In an mmdet
detector that is ``custom_hooks = [dict(type='FreezeExceptHook',
trainable=['neck.refinements'])]``: everything else (backbone, the rest of
the neck, the heads) keeps its weights and its BN statistics.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm


def _under(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + '.') for p in prefixes)


def freeze_except(model: nn.Module,
                  trainable: Sequence[str]) -> List[nn.Module]:
    """Set ``requires_grad=False`` on every parameter outside ``trainable``.

    Args:
        model: the detector (not a DDP wrapper).
        trainable: module-name prefixes that keep training, e.g.
            ``['neck.refinements']``; a prefix matches the module of that
            name and everything below it.

    Returns:
        The frozen BatchNorm layers. They must run in eval mode (call
        ``.eval()`` on each after every ``model.train()``), or their running
        statistics keep moving although their weights are frozen; this is
        what mmdet's ``norm_eval`` does for a backbone.

    Raises:
        ValueError: a prefix matches no parameter (a typo would otherwise
            freeze the whole model and train nothing).
    """
    prefixes = list(trainable)
    if not prefixes:
        raise ValueError('freeze_except: trainable must name at least one '
                         "module, e.g. ['neck.refinements']")
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(_under(name, [prefix]) for name in names):
            raise ValueError(
                f'freeze_except: {prefix!r} matches no parameter of '
                f'{type(model).__name__}; top-level modules are '
                f'{sorted({n.split(".")[0] for n in names})}')
    for name, param in model.named_parameters():
        if not _under(name, prefixes):
            param.requires_grad_(False)
    # BN is only left in train mode where it is trained (its affine
    # parameters are under a trainable prefix)
    return [
        module for name, module in model.named_modules()
        if isinstance(module, _BatchNorm) and not _under(name, prefixes)
    ]


def unloaded_modules(model: nn.Module,
                     state_dict: Dict[str, 'object'],
                     trainable: Sequence[str]) -> Dict[str, Dict[str, list]]:
    """Which modules a (non-strict) load of ``state_dict`` leaves at their
    initialisation.

    Args:
        model: the detector (not a DDP wrapper).
        state_dict: the checkpoint's ``state_dict`` (``module.`` prefixes
            removed).
        trainable: module-name prefixes that keep training.

    Returns:
        ``{'frozen': {module: [tensor names]}, 'trainable': {...}}``: every
        parameter or buffer of the model that the checkpoint lacks or holds
        with another shape (mmengine's non-strict load skips both), grouped
        by the module that owns it and by whether it trains.
        ``num_batches_tracked`` is ignored (it never changes an output).
    """
    found = dict(frozen=OrderedDict(), trainable=OrderedDict())
    for name, tensor in model.state_dict().items():
        if name.endswith('num_batches_tracked'):
            continue
        have = state_dict.get(name)
        if have is not None and tuple(getattr(have, 'shape', ())) == tuple(
                tensor.shape):
            continue
        module, _, leaf = name.rpartition('.')
        kind = 'trainable' if _under(name, trainable) else 'frozen'
        found[kind].setdefault(module, []).append(leaf)
    return found


@HOOKS.register_module()
class FreezeExceptHook(Hook):
    """Freeze every parameter outside ``trainable`` and keep frozen BN
    layers in eval mode for the whole training.

    Parameters are frozen in ``before_train`` (after the optimizer is
    built: frozen parameters get no gradient, and torch optimizers skip
    parameters without one, so neither momentum nor weight decay moves
    them). The train loops call ``model.train()`` at every epoch and after
    validation, so the frozen BN layers are put back into eval mode before
    every iteration. Modules other than BN keep the mode the loop sets
    (heads must stay in training mode to compute their losses).

    The second stage is only what it claims when the frozen part comes from
    the stage-1 checkpoint (``load_from``). mmengine loads it non-strictly:
    missing keys and shape mismatches are skipped. So, with
    ``check_loaded``, the hook reads the ``load_from`` checkpoint once more
    (``weights_only``) and raises, naming each module, when a frozen module
    is missing from it or has another shape (it would stay at its random
    initialisation and never train); the trainable modules the checkpoint
    lacks (the new ones stage 2 trains) are logged by name. Without
    ``load_from`` it warns that the frozen modules keep their
    initialisation (``init_cfg``).

    Args:
        trainable: module-name prefixes that keep training.
        check_loaded: check the ``load_from`` checkpoint as above.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 trainable: Union[str, Sequence[str]],
                 check_loaded: bool = True) -> None:
        self.trainable = [trainable] if isinstance(trainable, str) \
            else list(trainable)
        self.check_loaded = check_loaded
        self._frozen_norms: Optional[List[nn.Module]] = None

    def _check_load(self, runner, model: nn.Module) -> None:
        load_from = getattr(runner, '_load_from', None)
        if getattr(runner, '_resume', False):
            return  # a resumed stage 2: its own checkpoint holds everything
        if not load_from:
            runner.logger.warning(
                'FreezeExceptHook: no load_from; the frozen modules keep '
                'their initialisation (init_cfg). For a second training '
                'stage set load_from to the stage-1 checkpoint.')
            return
        from mmengine.runner.checkpoint import _load_checkpoint
        checkpoint = _load_checkpoint(load_from, map_location='cpu')
        state_dict = checkpoint.get('state_dict', checkpoint)
        state_dict = {
            (k[len('module.'):] if k.startswith('module.') else k): v
            for k, v in state_dict.items()
        }
        found = unloaded_modules(model, state_dict, self.trainable)

        def describe(modules: Dict[str, list]) -> str:
            return '; '.join(f'{m or "<model>"} ({", ".join(leaves)})'
                             for m, leaves in modules.items())

        if found['trainable']:
            runner.logger.info(
                f'FreezeExceptHook: {len(found["trainable"])} trainable '
                f'modules start from their initialisation (not in '
                f'{load_from}): {describe(found["trainable"])}')
        if found['frozen']:
            raise ValueError(
                f'FreezeExceptHook: load_from {load_from} does not hold '
                f'{len(found["frozen"])} frozen modules (missing, or another '
                f'shape): {describe(found["frozen"])}. They would keep their '
                'random initialisation and never train. Load a checkpoint '
                'of the same architecture for them, or add their names to '
                f'trainable (now {self.trainable}).')

    def before_train(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            # DDP builds its reducer in the runner's constructor, before any
            # hook runs, so it still expects gradients for the parameters
            # frozen here; only find_unused_parameters lets it skip them
            # (and leaves their grads undefined, so they do not move)
            if not getattr(model, 'find_unused_parameters', True):
                raise ValueError(
                    'FreezeExceptHook with several processes needs '
                    "model_wrapper_cfg=dict(type='MMDistributedDataParallel',"
                    ' find_unused_parameters=True) in the config')
            model = model.module
        if self.check_loaded:
            self._check_load(runner, model)
        self._frozen_norms = freeze_except(model, self.trainable)
        num_trainable = sum(p.numel() for p in model.parameters()
                            if p.requires_grad)
        runner.logger.info(
            f'FreezeExceptHook: training only {self.trainable} '
            f'({num_trainable} parameters); '
            f'{len(self._frozen_norms)} frozen BN layers in eval mode')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        for module in self._frozen_norms or ():
            module.eval()
