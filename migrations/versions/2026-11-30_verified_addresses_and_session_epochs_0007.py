"""verified e-mail addresses and session epochs

An address is verified by a mailed link before anything is granted because of it; accounts that exist already
are taken as verified (they were created under the old rules and have been in use). A password change or
"sign out everywhere" raises the account's session epoch: every web session signed in under an older epoch ends.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 10:00:00

"""

import warnings
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from advanced_alchemy.types import GUID, DateTimeUTC

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades", "data_upgrades", "data_downgrades")

sa.GUID = GUID
sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        schema_upgrades()
        data_upgrades()


def downgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        data_downgrades()
        schema_downgrades()


def schema_upgrades() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", sa.DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))


def schema_downgrades() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
        batch_op.drop_column("email_verified_at")


def data_upgrades() -> None:
    """Accounts made before verification existed keep working as they did."""
    op.execute("UPDATE user_account SET email_verified_at = created_at")


def data_downgrades() -> None:
    """Nothing to undo: the columns go with the schema downgrade."""
