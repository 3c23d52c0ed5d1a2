"""LTI Advantage: approved platforms, courses and their members, course rosters, deep-linking requests

A platform registered by LTI Dynamic Registration waits for an administrator's approval; platforms registered
before (by an operator, from the command line) count as approved. Every LMS course (lti_context) gets a course of
its own, the unit that slots can be reserved for; its members (course_member) come from launches and from the
platform's roster (lti_roster_member, Names and Role Provisioning Services). A course's first launch may now come
from a learner, so its professor is optional.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 14:00:00

"""

import warnings
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy.dialects import postgresql

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades", "data_upgrades", "data_downgrades")

sa.GUID = GUID
sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        schema_upgrades()


def downgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        schema_downgrades()


def _audit_columns() -> list[sa.Column]:
    return [
        sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    ]


def schema_upgrades() -> None:
    # Platforms: how each was registered, and whether an administrator approved it.
    with op.batch_alter_table('lti_platform', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registered_via', sa.String(length=16), nullable=False, server_default='manual'))
        batch_op.add_column(sa.Column('approved_at', sa.DateTimeUTC(timezone=True), nullable=True))
        batch_op.create_check_constraint(op.f('ck_lti_platform_registered_via_valid'), "registered_via IN ('manual', 'dynamic')")
    op.execute("UPDATE lti_platform SET approved_at = created_at")
    with op.batch_alter_table('lti_platform', schema=None) as batch_op:
        batch_op.alter_column('registered_via', server_default=None)

    # Courses (consultations): what slots are reserved for, and who belongs to each.
    op.create_table('course',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    *_audit_columns(),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_course'))
    )
    op.create_table('course_member',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('course_id', sa.GUID(length=16), nullable=False),
    sa.Column('user_id', sa.GUID(length=16), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    *_audit_columns(),
    sa.CheckConstraint("role IN ('instructor', 'learner')", name=op.f('ck_course_member_role_valid')),
    sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_course_member_course_id_course'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_course_member_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_course_member')),
    sa.UniqueConstraint('course_id', 'user_id', name='uq_course_member_course_user')
    )
    with op.batch_alter_table('course_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_course_member_user_id'), ['user_id'], unique=False)
    op.create_table('slot_course',
    sa.Column('slot_id', sa.GUID(length=16), nullable=False),
    sa.Column('course_id', sa.GUID(length=16), nullable=False),
    sa.ForeignKeyConstraint(['slot_id'], ['consultation_slot.id'], name=op.f('fk_slot_course_slot_id_consultation_slot'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_slot_course_course_id_course'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('slot_id', 'course_id', name=op.f('pk_slot_course'))
    )
    with op.batch_alter_table('slot_course', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slot_course_course_id'), ['course_id'], unique=False)

    # LMS courses: each gets its course (titled as on the platform), its platform, and room for its roster.
    with op.batch_alter_table('lti_context', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform_id', sa.GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column('course_id', sa.GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column('memberships_url', sa.String(length=1000), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('roster_fetched_at', sa.DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('roster_error', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('term_start', sa.Date(), nullable=True))
    op.execute(
        "UPDATE lti_context c SET platform_id = (SELECT p.id FROM lti_platform p WHERE p.issuer = c.issuer"
        " ORDER BY p.created_at LIMIT 1)"
    )
    op.execute("UPDATE lti_context SET course_id = gen_random_uuid()")
    op.execute(
        "INSERT INTO course (id, title, created_at, updated_at) SELECT course_id, title, now(), now() FROM lti_context"
    )
    op.execute(
        "INSERT INTO course_member (id, course_id, user_id, role, created_at, updated_at)"
        " SELECT gen_random_uuid(), course_id, professor_id, 'instructor', now(), now() FROM lti_context"
    )
    with op.batch_alter_table('lti_context', schema=None) as batch_op:
        batch_op.alter_column('course_id', nullable=False)
        batch_op.alter_column('memberships_url', server_default=None)
        batch_op.alter_column('roster_error', server_default=None)
        batch_op.drop_column('title')
        batch_op.alter_column('professor_id', nullable=True)
        batch_op.drop_constraint('fk_lti_context_professor_id_user_account', type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_lti_context_professor_id_user_account'), 'user_account', ['professor_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_lti_context_platform_id_lti_platform'), 'lti_platform', ['platform_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(batch_op.f('fk_lti_context_course_id_course'), 'course', ['course_id'], ['id'], ondelete='CASCADE')
        batch_op.create_unique_constraint(batch_op.f('uq_lti_context_course_id'), ['course_id'])
        batch_op.create_index(batch_op.f('ix_lti_context_platform_id'), ['platform_id'], unique=False)

    op.create_table('lti_roster_member',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('context_id', sa.GUID(length=16), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    *_audit_columns(),
    sa.CheckConstraint("role IN ('instructor', 'learner', 'other')", name=op.f('ck_lti_roster_member_role_valid')),
    sa.ForeignKeyConstraint(['context_id'], ['lti_context.id'], name=op.f('fk_lti_roster_member_context_id_lti_context'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_roster_member')),
    sa.UniqueConstraint('context_id', 'subject', name='uq_lti_roster_member_context_subject')
    )
    op.create_table('lti_deep_link_request',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('platform_id', sa.GUID(length=16), nullable=False),
    sa.Column('user_id', sa.GUID(length=16), nullable=False),
    sa.Column('deployment_id', sa.String(length=255), nullable=False),
    sa.Column('return_url', sa.String(length=1000), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTimeUTC(timezone=True), nullable=False),
    *_audit_columns(),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platform.id'], name=op.f('fk_lti_deep_link_request_platform_id_lti_platform'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_lti_deep_link_request_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_deep_link_request'))
    )
    with op.batch_alter_table('lti_deep_link_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_deep_link_request_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lti_deep_link_request_user_id'), ['user_id'], unique=False)

    # A landing may name several professors (a course-wide view).
    with op.batch_alter_table('lti_launch_token', schema=None) as batch_op:
        batch_op.alter_column('target', type_=sa.String(length=1000), existing_nullable=False)


def schema_downgrades() -> None:
    with op.batch_alter_table('lti_launch_token', schema=None) as batch_op:
        batch_op.alter_column('target', type_=sa.String(length=300), existing_nullable=False)
    op.drop_table('lti_deep_link_request')
    op.drop_table('lti_roster_member')
    with op.batch_alter_table('lti_context', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title', sa.String(length=500), nullable=False, server_default=''))
    op.execute("UPDATE lti_context c SET title = course.title FROM course WHERE course.id = c.course_id")
    # Before this revision every course had a professor: those that have none now go.
    op.execute("DELETE FROM lti_context WHERE professor_id IS NULL")
    with op.batch_alter_table('lti_context', schema=None) as batch_op:
        batch_op.alter_column('title', server_default=None)
        batch_op.drop_index(batch_op.f('ix_lti_context_platform_id'))
        batch_op.drop_constraint(batch_op.f('uq_lti_context_course_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_lti_context_course_id_course'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_lti_context_platform_id_lti_platform'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_lti_context_professor_id_user_account'), type_='foreignkey')
        batch_op.create_foreign_key('fk_lti_context_professor_id_user_account', 'user_account', ['professor_id'], ['id'], ondelete='CASCADE')
        batch_op.alter_column('professor_id', nullable=False)
        batch_op.drop_column('term_start')
        batch_op.drop_column('roster_error')
        batch_op.drop_column('roster_fetched_at')
        batch_op.drop_column('memberships_url')
        batch_op.drop_column('course_id')
        batch_op.drop_column('platform_id')
    op.drop_table('slot_course')
    op.drop_table('course_member')
    op.drop_table('course')
    with op.batch_alter_table('lti_platform', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lti_platform_registered_via_valid'), type_='check')
        batch_op.drop_column('approved_at')
        batch_op.drop_column('registered_via')


def data_upgrades() -> None:
    """The data moves with the schema above (courses for existing LMS courses, approval of existing platforms)."""


def data_downgrades() -> None:
    """Nothing beyond the schema downgrade."""
