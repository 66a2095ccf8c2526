"""Baseline: the three tables as edgebench made them before it used Alembic.

A database made by that code (no alembic_version table) is completed, never recreated: tables it
lacks are created and nullable columns it lacks are added, its rows stay. The columns are frozen
here as they were (name:type, ! for NOT NULL), so this revision means the same forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bench.errors import EdgebenchError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TYPES = {"int": sa.BigInteger, "float": sa.Double, "bool": sa.Boolean, "str": sa.Text}

RESULT_COLUMNS = """
    schema_version:int! run_id:str! test:str! config_id:str! rep:int! source:str!
    started_utc:str! finished_utc:str! edgebench_version:str! git_commit:str model_id:str!
    variant:str! precision:str! model_sha256:str model_source_sha256:str model_size_bytes:int
    weights:str source_quant:str backend:str! backend_version:str! onnxruntime_version:str
    onnxruntime_genai_version:str ep:str! ep_options:str! threads:int! n_prompt:int!
    n_gen_requested:int! n_generated:int! load_s:float tokenize_s:float prefill_s:float
    prefill_tok_s:float ttft_s:float decode_s:float decode_tok_s:float itl_p50_s:float
    itl_p90_s:float itl_p99_s:float itl_samples_s:str peak_rss_bytes:int bytes_per_token:int
    mem_bandwidth_bytes_s:float decode_roofline_frac:float host_fingerprint:str! cpu_model:str!
    cpu_arch:str! cpu_cores_physical:int cpu_cores_logical:int ram_bytes:int os_name:str!
    os_release:str python_version:str accelerators:str! available_eps:str on_battery:bool
    virtualized:bool cloud_provider:str energy_method:str! energy_scope:str
    sampling_interval_s:float idle_power_w:float prefill_energy_j:float
    prefill_energy_net_j:float decode_energy_j:float decode_energy_net_j:float
    prefill_j_per_tok:float decode_j_per_tok:float prefill_avg_power_w:float
    decode_avg_power_w:float energy_warning:str prefill_j_per_tok_low:float
    prefill_j_per_tok_high:float decode_j_per_tok_low:float decode_j_per_tok_high:float
    energy_basis:str cpu_freq_mhz_before:float cpu_freq_mhz_after:float cpu_temp_c_before:float
    cpu_temp_c_after:float warnings:str
    uploaded_utc:str! token_id:int32
"""

QUALITY_COLUMNS = """
    quality_schema_version:int! run_id:str! measure:str! dataset:str! dataset_sha256:str!
    item:str started_utc:str! finished_utc:str! wall_s:float! edgebench_version:str!
    git_commit:str model_id:str! variant:str! precision:str! weights:str! model_sha256:str
    model_source_sha256:str source_quant:str backend:str! backend_version:str! ep:str!
    threads:int! host_fingerprint:str! cpu_model:str! partial:bool! context_tokens:int
    stride_tokens:int n_windows:int n_tokens:int n_bytes:int nll_nats:float bits_per_byte:float
    reference_variant:str reference_model_sha256:str top1_agreement:float mean_kl_nats:float
    prompt_format:str passed:bool sandbox_status:str sandbox_detail:str isolation:str
    prompt_tokens:int generated_tokens:int output_bytes:int stop_reason:str gen_s:float
    warnings:str
    row_key:str! uploaded_utc:str! token_id:int32
"""

TOKEN_COLUMNS = "name:str! token_sha256:str! created_utc:str!"


def _columns(spec: str) -> list[sa.Column]:
    out = []
    for item in spec.split():
        name, kind = item.split(":")
        required = kind.endswith("!")
        kind = kind.rstrip("!")
        type_ = sa.Integer() if kind == "int32" else _TYPES[kind]()
        out.append(sa.Column(name, type_, nullable=not required))
    return out


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _create(name: str) -> None:
    if name == "results":
        op.create_table(
            "results", _id(), *_columns(RESULT_COLUMNS),
            sa.UniqueConstraint("run_id", "config_id", "rep", name="uq_results_run_config_rep"))
        for column in ("model_id", "host_fingerprint", "cpu_model"):
            op.create_index(f"ix_results_{column}", "results", [column])
    elif name == "upload_tokens":
        # token_sha256 carries an unnamed UNIQUE, as the old code made it
        op.create_table("upload_tokens", _id(), *_columns(TOKEN_COLUMNS),
                        sa.UniqueConstraint("token_sha256"))
    else:
        op.create_table("quality_rows", _id(), *_columns(QUALITY_COLUMNS),
                        sa.UniqueConstraint("row_key", name="uq_quality_rows_key"))
        for column in ("run_id", "model_id", "host_fingerprint", "cpu_model"):
            op.create_index(f"ix_quality_rows_{column}", "quality_rows", [column])


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = set(inspector.get_table_names())
    specs = {"results": RESULT_COLUMNS, "upload_tokens": TOKEN_COLUMNS,
             "quality_rows": QUALITY_COLUMNS}
    for table, spec in specs.items():
        if table not in present:
            _create(table)
            continue
        have = {c["name"] for c in inspector.get_columns(table)}
        for column in _columns(spec):
            if column.name in have:
                continue
            if not column.nullable:
                raise EdgebenchError(f"table {table} has no column {column.name}: this database "
                                   "was not made by edgebench")
            op.add_column(table, column)


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: delete the database instead")
