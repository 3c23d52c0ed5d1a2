"""The serving process's own housekeeping."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Keep what the app made while starting (modules, mappers, routes, templates: some 270,000 objects that live as
    long as the process) out of the garbage collector's passes. A full pass over them took 230 ms on the 2-core
    benchmark machine, and the collector's work was 6 % of a grid page's CPU (bench/README.md, issue 17)."""
    gc.collect()
    gc.freeze()
