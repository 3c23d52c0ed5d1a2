"""The Google package's web form."""

from __future__ import annotations

import msgspec


class RoleForm(msgspec.Struct):
    """A new account from a Google sign-in: professor or student."""

    user_type: str = ""
