"""Shared request-body base: a partial update that names only the fields it changes."""

from __future__ import annotations

import msgspec


class PartialUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Fields default to UNSET; `changes()` returns the ones the client sent."""

    def changes(self) -> dict[str, object]:
        return {f: v for f in self.__struct_fields__ if (v := getattr(self, f)) is not msgspec.UNSET}
