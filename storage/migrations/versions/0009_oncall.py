"""on-call: people and their contact points, rotations as rules, overrides; escalation state; outbox.page

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'oncall_person',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('slack', sa.String(length=64), nullable=True),
        sa.Column('discord', sa.String(length=64), nullable=True),
        sa.Column('whatsapp', sa.String(length=20), nullable=True),
        sa.Column('pagerduty', sa.String(length=64), nullable=True),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'oncall_rotation',
        sa.Column('role', sa.String(length=60), nullable=False),
        sa.Column('people', sa.JSON(), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('handoff_time', sa.String(length=5), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('role'),
    )
    op.create_table(
        'oncall_override',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=60), nullable=False),
        sa.Column('person', sa.String(length=64), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person'], ['oncall_person.name']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_oncall_override_role', 'oncall_override', ['role', 'ends_at'])
    op.create_table(
        'escalation',
        sa.Column('incident_number', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('severity', sa.String(length=16), nullable=False),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('level_since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('waiting_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('paged', sa.JSON(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['incident_number'], ['incident.number']),
        sa.PrimaryKeyConstraint('incident_number'),
    )
    op.create_index('ix_escalation_due_at', 'escalation', ['due_at'])
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('page', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('page')
    op.drop_index('ix_escalation_due_at', table_name='escalation')
    op.drop_table('escalation')
    op.drop_index('ix_oncall_override_role', table_name='oncall_override')
    op.drop_table('oncall_override')
    op.drop_table('oncall_rotation')
    op.drop_table('oncall_person')
