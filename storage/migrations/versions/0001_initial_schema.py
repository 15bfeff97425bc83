"""initial schema: incidents, action items, timeline, reminders, counters, inbound deliveries

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('counter',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('inbound_delivery',
    sa.Column('delivery_id', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('delivery_id')
    )
    op.create_table('incident',
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('title', sa.String(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('impact', sa.String(), nullable=True),
    sa.Column('reporter', sa.String(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('declared_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(), nullable=True),
    sa.Column('mitigated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('summary', sa.String(), nullable=True),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('frozen', sa.Boolean(), nullable=False),
    sa.Column('checklist', sa.JSON(), nullable=False),
    sa.Column('suggested_playbook', sa.String(), nullable=True),
    sa.Column('last_update_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_nudge_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('snoozed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalations_sent', sa.Integer(), nullable=False),
    sa.Column('resolution_escalated', sa.Boolean(), nullable=False),
    sa.Column('postmortem_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('postmortem_reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('platform', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=128), nullable=True),
    sa.Column('thread', sa.String(length=128), nullable=True),
    sa.Column('card_message', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('number')
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_room', ['platform', 'channel', 'thread'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_status'), ['status'], unique=False)

    op.create_table('action_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_number', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(), nullable=False),
    sa.Column('owner', sa.String(), nullable=True),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('created_by', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(), nullable=True),
    sa.Column('overdue_reminded', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['incident_number'], ['incident.number'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_number', 'number')
    )
    with op.batch_alter_table('action_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_item_incident_number'), ['incident_number'], unique=False)

    op.create_table('reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_number'], ['incident.number'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.create_index('ix_reminder_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminder_incident_number'), ['incident_number'], unique=False)

    op.create_table('timeline_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('author', sa.String(), nullable=False),
    sa.Column('text', sa.String(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('message_ref', sa.String(length=128), nullable=True),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['incident_number'], ['incident.number'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('timeline_event', schema=None) as batch_op:
        batch_op.create_index('ix_timeline_incident_time', ['incident_number', 'occurred_at', 'id'], unique=False)
        batch_op.create_index('ix_timeline_message', ['incident_number', 'message_ref'], unique=False)

    # The incident counter row exists from the start, so numbering is a plain row-locked UPDATE.
    op.bulk_insert(sa.table('counter', sa.column('name', sa.String), sa.column('value', sa.Integer)),
                   [{'name': 'incident', 'value': 0}])



def downgrade() -> None:
    with op.batch_alter_table('timeline_event', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_message')
        batch_op.drop_index('ix_timeline_incident_time')

    op.drop_table('timeline_event')
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminder_incident_number'))
        batch_op.drop_index('ix_reminder_due')

    op.drop_table('reminder')
    with op.batch_alter_table('action_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_item_incident_number'))

    op.drop_table('action_item')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_status'))
        batch_op.drop_index('ix_incident_room')

    op.drop_table('incident')
    op.drop_table('inbound_delivery')
    op.drop_table('counter')
