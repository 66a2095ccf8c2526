"""Revocable tokens whose ids are never reused; runs owned by the token that created them;
indexes for the filtered, paginated reads.

SQLite reuses the largest rowid once that row is deleted unless the table says AUTOINCREMENT,
which only a rebuilt table can say (batch mode copies the rows; ids stay). PostgreSQL's serial
sequence never goes back. A run already stored belongs to the lowest token id among its rows
(the first uploader; older code let others append).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    revoked = sa.Column("revoked_utc", sa.Text, nullable=True)
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("upload_tokens", recreate="always",
                                  table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.add_column(revoked)
    else:
        op.add_column("upload_tokens", revoked)

    op.create_table(
        "runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("token_id", sa.Integer, nullable=True),
        sa.Column("created_utc", sa.Text, nullable=False),
    )
    op.execute(
        "INSERT INTO runs (run_id, token_id, created_utc) "
        "SELECT run_id, MIN(token_id), MIN(uploaded_utc) FROM ("
        " SELECT run_id, token_id, uploaded_utc FROM results"
        " UNION ALL SELECT run_id, token_id, uploaded_utc FROM quality_rows) AS stored "
        "GROUP BY run_id")

    for table in ("results", "quality_rows"):
        for column in ("backend", "started_utc"):
            op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    raise NotImplementedError("not undone: restore a backup taken before upgrading")
