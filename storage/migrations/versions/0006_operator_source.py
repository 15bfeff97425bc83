"""operator.source: who vouches for an operator — the WARROOM_WHATSAPP_OPERATORS list (env) or the CLI (cli)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('operator') as batch:
        batch.add_column(sa.Column('source', sa.String(length=8), nullable=False, server_default='cli'))


def downgrade() -> None:
    with op.batch_alter_table('operator') as batch:
        batch.drop_column('source')
