"""The serving process's housekeeping (lib/process)."""

from __future__ import annotations

import gc

from app.lib.process import freeze_startup_objects


def test_the_objects_made_at_startup_are_kept_out_of_the_collectors_passes() -> None:
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 100_000  # the app's modules, mappers and templates among them
    finally:
        gc.unfreeze()
