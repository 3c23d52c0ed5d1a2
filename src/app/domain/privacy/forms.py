"""The privacy pages' web forms."""

from __future__ import annotations

import msgspec

from app.lib.forms import Verbatim


class EraseForm(msgspec.Struct):
    password: Verbatim = ""
    confirm: str = ""
