"""operations: alert groups and alerts, the daily digest's schedule, when a deploy freeze went on

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alert_group',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('title', sa.String(), nullable=False),
        sa.Column('incident_number', sa.Integer(), nullable=True),
        sa.Column('rule', sa.String(length=64), nullable=True),
        sa.Column('severity', sa.String(length=16), nullable=True),
        sa.Column('auto_resolve', sa.Boolean(), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['incident_number'], ['incident.number']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    with op.batch_alter_table('alert_group', schema=None) as batch_op:
        batch_op.create_index('ix_alert_group_incident', ['incident_number'], unique=False)
    op.create_table(
        'alert',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('fingerprint', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('title', sa.String(), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('notifications', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['alert_group.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('group_id', 'fingerprint'),
    )
    op.create_table(
        'schedule',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frozen_at', sa.DateTime(timezone=True), nullable=True))
    # Freezes already on: they went on at their latest "deploy freeze on" timeline entry.
    op.execute(
        "UPDATE incident SET frozen_at = (SELECT max(t.occurred_at) FROM timeline_event t "
        "WHERE t.incident_number = incident.number AND t.kind = 'freeze' AND t.text = 'deploy freeze on') "
        "WHERE frozen = true"
    )


def downgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_column('frozen_at')
    op.drop_table('schedule')
    op.drop_table('alert')
    with op.batch_alter_table('alert_group', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_group_incident')
    op.drop_table('alert_group')
