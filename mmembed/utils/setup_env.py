# Copyright (c) mmembed authors. All rights reserved.
def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmdet's and mmembed's modules into mmdet's registries.

    mmembed registers straight into ``mmdet.registry`` and keeps the
    ``mmdet`` scope, so this only has to import both packages.

    Args:
        init_default_scope: create the ``mmdet`` default scope (what
            ``default_scope = 'mmdet'`` in a config does), as mmdet's own
            ``register_all_modules`` does.
    """
    from mmdet.utils import register_all_modules as mmdet_register_all

    import mmembed  # noqa: F401  (registers on import)
    mmdet_register_all(init_default_scope=init_default_scope)
