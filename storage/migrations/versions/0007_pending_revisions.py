"""pending revisions: edits, deletes and pins that arrived before their message was captured

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pending_revision',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_number', sa.Integer(), nullable=False),
        sa.Column('message_ref', sa.String(length=128), nullable=False),
        sa.Column('text', sa.String(), nullable=True),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.Column('pinned', sa.Boolean(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['incident_number'], ['incident.number']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_pending_revision_message', 'pending_revision', ['incident_number', 'message_ref'])


def downgrade() -> None:
    op.drop_index('ix_pending_revision_message', table_name='pending_revision')
    op.drop_table('pending_revision')
