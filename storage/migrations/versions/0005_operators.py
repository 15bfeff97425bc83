"""operators: WhatsApp numbers that run incidents, and followers that get an incident's messages mirrored

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'operator',
        sa.Column('phone', sa.String(length=20), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('current_incident', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['current_incident'], ['incident.number']),
        sa.PrimaryKeyConstraint('phone'),
    )
    op.create_table(
        'follower',
        sa.Column('incident_number', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('address', sa.String(length=128), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['incident_number'], ['incident.number']),
        sa.PrimaryKeyConstraint('incident_number', 'platform', 'address'),
    )


def downgrade() -> None:
    op.drop_table('follower')
    op.drop_table('operator')
