"""relay.coldstart: garbage collection paused during a handler's init, never left off."""

from __future__ import annotations

import gc

import pytest
from relay.coldstart import collection_paused


@pytest.fixture(autouse=True)
def _restore_gc():
    yield
    gc.unfreeze()
    gc.enable()


def test_collection_is_off_during_init_and_back_on_after_with_init_objects_frozen():
    # Given collection on and nothing frozen
    gc.enable()
    gc.unfreeze()
    # When an init runs inside the pause
    with collection_paused():
        during = gc.isenabled()
        built = [object() for _ in range(1000)]
    # Then no collection ran meanwhile, it is back on, and init's objects are frozen
    assert during is False
    assert gc.isenabled() is True
    assert gc.get_freeze_count() >= len(built)


def test_a_failed_init_turns_collection_back_on_and_freezes_nothing():
    gc.enable()
    gc.unfreeze()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("bad config")
    assert gc.isenabled() is True
    assert gc.get_freeze_count() == 0


def test_collection_left_off_by_the_caller_stays_off():
    gc.disable()
    with collection_paused():
        pass
    assert gc.isenabled() is False
