"""outbox.work: a code host job (post-mortem pull request, issue) delivered through the outbox

Revision ID: 0011
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('work', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('work')
