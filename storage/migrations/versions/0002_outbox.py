"""outbox: outbound messages delivered after commit, with retries

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dedupe_key', sa.String(length=200), nullable=False),
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('operation', sa.String(length=16), nullable=False),
        sa.Column('incident_number', sa.Integer(), nullable=True),
        sa.Column('room_channel', sa.String(length=128), nullable=True),
        sa.Column('room_thread', sa.String(length=128), nullable=True),
        sa.Column('message', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('platform_message_id', sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(['incident_number'], ['incident.number']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('dedupe_key'),
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_ready', ['status', 'next_attempt_at', 'id'], unique=False)
        batch_op.create_index('ix_outbox_incident', ['incident_number', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_incident')
        batch_op.drop_index('ix_outbox_ready')
    op.drop_table('outbox')
