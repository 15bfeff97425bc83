"""customer briefs: contacts by tenant, incident tenants, briefs and their recipients

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'contact',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'phone'),
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index('ix_contact_phone', ['phone'], unique=False)
        batch_op.create_index('ix_contact_tenant', ['tenant'], unique=False)
    op.create_table(
        'incident_tenant',
        sa.Column('incident_number', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['incident_number'], ['incident.number']),
        sa.PrimaryKeyConstraint('incident_number', 'tenant'),
    )
    op.create_table(
        'brief',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_number', sa.Integer(), nullable=False),
        sa.Column('template', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('parameters', sa.JSON(), nullable=False),
        sa.Column('text', sa.String(), nullable=False),
        sa.Column('target', sa.String(length=200), nullable=False),
        sa.Column('eta_minutes', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.String(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['incident_number'], ['incident.number']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('brief', schema=None) as batch_op:
        batch_op.create_index('ix_brief_incident_number', ['incident_number'], unique=False)
    op.create_table(
        'brief_recipient',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('brief_id', sa.Integer(), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('message_id', sa.String(length=128), nullable=True),
        sa.Column('via', sa.String(length=16), nullable=True),
        sa.Column('error', sa.String(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['brief_id'], ['brief.id']),
        sa.ForeignKeyConstraint(['contact_id'], ['contact.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('brief_id', 'contact_id'),
    )
    with op.batch_alter_table('brief_recipient', schema=None) as batch_op:
        batch_op.create_index('ix_brief_recipient_brief_id', ['brief_id'], unique=False)
        batch_op.create_index('ix_brief_recipient_message_id', ['message_id'], unique=False)
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_update_due_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('customer')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_column('customer_update_due_at')
    op.drop_table('brief_recipient')
    op.drop_table('brief')
    op.drop_table('incident_tenant')
    op.drop_table('contact')
