"""Kernel: on PostgreSQL, a statement trigger on event_outbox wakes the relays of every process.

The trigger sends ``NOTIFY taylordash_outbox`` once per inserting statement; PostgreSQL delivers it at
commit (and drops it on rollback), so writers need no extra round trip to wake a relay elsewhere.

Revision ID: kernel_0003
Revises: kernel_0002
"""

from alembic import op

revision = "kernel_0003"
down_revision = "kernel_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION taylordash_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('taylordash_outbox', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER event_outbox_notify AFTER INSERT ON event_outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION taylordash_outbox_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS event_outbox_notify ON event_outbox")
    op.execute("DROP FUNCTION IF EXISTS taylordash_outbox_notify()")
