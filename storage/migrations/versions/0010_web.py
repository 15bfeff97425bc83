"""web: public status-page updates and one-time sign-in links / browser sessions

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'public_update',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('incident_number', sa.Integer(), sa.ForeignKey('incident.number'), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('text', sa.String(), nullable=False),
        sa.Column('areas', sa.JSON(), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_public_update_incident_number', 'public_update', ['incident_number'])
    op.create_index('ix_public_update_time', 'public_update', ['published_at', 'id'])
    op.create_table(
        'web_token',
        sa.Column('digest', sa.String(length=64), primary_key=True),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('web_token')
    op.drop_index('ix_public_update_time', 'public_update')
    op.drop_index('ix_public_update_incident_number', 'public_update')
    op.drop_table('public_update')
