# Copyright (c) mmembed authors. All rights reserved.
"""mmembed.utils.arg_checks: misspelt arguments and config keys name the
owner, the bad key and the closest valid keys (issue 21, item 4)."""
import pytest

from mmembed.utils.arg_checks import (UnknownArgumentError, UnknownKeyError,
                                      check_init_args, check_keys,
                                      closest_keys, init_arg_names)


def test_closest_keys_ranks_spelling_neighbours():
    valid = ['mask_thr', 'mask_box_expand', 'score_thr', 'nms']
    assert closest_keys('mask_trh', valid)[0] == 'mask_thr'
    assert closest_keys('maskthr', valid)[0] == 'mask_thr'
    assert closest_keys('MASK_THR', valid) == ['mask_thr']
    assert closest_keys('unrelated_option', valid) == []


def test_check_keys_names_owner_key_and_suggestion():
    with pytest.raises(UnknownKeyError) as exc:
        check_keys('EmbedMaskHead', {'mask_trh': 0.4, 'score_thr': 0.1},
                   ['mask_thr', 'score_thr'])
    text = str(exc.value)
    # KeyError would quote the whole message; ours reads as a sentence
    assert text.startswith('EmbedMaskHead: unknown test_cfg key')
    assert "'mask_trh' (did you mean 'mask_thr'?)" in text
    assert isinstance(exc.value, KeyError)
    check_keys('EmbedMaskHead', {'score_thr': 0.1}, ['mask_thr', 'score_thr'])


class _Parent:

    def __init__(self, in_channels: int = 1, *, feat_channels: int = 2):
        self.in_channels, self.feat_channels = in_channels, feat_channels


@check_init_args
class _Child(_Parent):

    def __init__(self, *, embed_dim: int = 3, **kwargs):
        self.embed_dim = embed_dim
        super().__init__(**kwargs)


def test_init_arg_names_follow_kwargs_to_the_parent():
    assert init_arg_names(_Child) == {'embed_dim', 'in_channels',
                                      'feat_channels'}


def test_unknown_init_argument_names_the_class_built():
    with pytest.raises(UnknownArgumentError) as exc:
        _Child(embed_dims=4)
    text = str(exc.value)
    assert text.startswith('_Child got unknown argument')
    assert "'embed_dims' (did you mean 'embed_dim'?)" in text
    assert isinstance(exc.value, TypeError)
    child = _Child(embed_dim=5, feat_channels=6)
    assert (child.embed_dim, child.feat_channels) == (5, 6)


def test_subclass_that_sets_parent_arguments_still_works():

    class User(_Child):
        """No **kwargs: passes a computed argument to the checked class."""

        def __init__(self, width: int):
            super().__init__(embed_dim=width, in_channels=2 * width)

    user = User(4)
    assert (user.embed_dim, user.in_channels) == (4, 8)
    with pytest.raises(UnknownArgumentError, match="'widht'.*'width'"):
        # the subclass is built through the checked __init__ of _Child
        _Child.__init__(user, widht=3)


def test_extra_names_for_parents_that_swallow_kwargs():

    class Swallow:

        def __init__(self, a: int = 0, **kwargs):
            self.a = a

    checked = check_init_args(extra=('train_cfg', ))(type(
        'Checked', (Swallow, ), {}))
    checked(a=1, train_cfg=None)
    with pytest.raises(UnknownArgumentError, match="'b'"):
        checked(b=1)
