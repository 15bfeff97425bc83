"""outbox claims name their process; WhatsApp windows recorded as closed; statuses that come before their send

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=128), nullable=True))
    with op.batch_alter_table('contact') as batch:
        batch.add_column(sa.Column('window_closed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'early_status',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=128), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=True),
        sa.Column('error_code', sa.Integer(), nullable=True),
        sa.Column('error_title', sa.String(length=500), nullable=True),
        sa.Column('window_closed', sa.Boolean(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_early_status_message_id', 'early_status', ['message_id'])


def downgrade() -> None:
    op.drop_index('ix_early_status_message_id', table_name='early_status')
    op.drop_table('early_status')
    with op.batch_alter_table('contact') as batch:
        batch.drop_column('window_closed_at')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('claimed_by')
