"""The ``genbatch sim`` process keeps its full collections short (serve.py)."""

from __future__ import annotations

import gc

from genbatch.sim.serve import short_full_collections


def test_a_full_collection_freezes_what_survived_it_and_undo_thaws() -> None:
    assert gc.get_freeze_count() == 0  # nothing else in this process freezes
    kept = [[i] for i in range(1000)]  # long-lived, as a world's entities are
    undo = short_full_collections()
    try:
        gc.collect(1)  # a young pass freezes nothing
        assert gc.get_freeze_count() == 0
        gc.collect()  # a full pass: its survivors leave the collector's walks
        assert gc.get_freeze_count() >= len(kept)
    finally:
        undo()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gc.get_freeze_count() == 0  # undone: the callback is gone
