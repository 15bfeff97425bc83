"""outbox.work: a code host job (post-mortem pull request, issue) delivered through the outbox;
action_item.issue_number / issue_url: an action item's issue on the code host

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('work', sa.JSON(), nullable=True))
    with op.batch_alter_table('action_item') as batch:
        batch.add_column(sa.Column('issue_number', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('issue_url', sa.String(length=300), nullable=True))
        batch.create_index('ix_action_item_issue_number', ['issue_number'])


def downgrade() -> None:
    with op.batch_alter_table('action_item') as batch:
        batch.drop_index('ix_action_item_issue_number')
        batch.drop_column('issue_url')
        batch.drop_column('issue_number')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('work')
