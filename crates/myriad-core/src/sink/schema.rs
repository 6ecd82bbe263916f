//! The recording schema: eight tables, their columns and the migrations that create them.
//!
//! It is a contract users query, so it changes only by new migrations appended to [`MIGRATIONS`].
//! Every table carries `exp_id` and is partitioned by it (`PARTITION BY LIST (exp_id)`): an
//! experiment's rows live in their own partition, which can be dropped or detached whole. The
//! partition for an experiment is created on first use (see [`partition_ddl`]).

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    Text,
    Uuid,
    /// Microseconds since the Unix epoch, UTC; from JS as an ISO 8601 string or epoch milliseconds.
    Timestamptz,
    Jsonb,
    Float8,
    /// A 64-bit integer (Postgres `bigint`); from JS a number that is an integer of at most
    /// 2^53 - 1 in magnitude (what a JS number holds exactly).
    Int8,
    /// A JS boolean (Postgres `boolean`).
    Bool,
}

impl ColType {
    /// The Postgres type the migrations give such a column.
    pub fn sql_name(self) -> &'static str {
        match self {
            Text => "text",
            Uuid => "uuid",
            Timestamptz => "timestamptz",
            Jsonb => "jsonb",
            Float8 => "float8",
            Int8 => "int8",
            Bool => "bool",
        }
    }
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
    pub nullable: bool,
}

const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty, nullable: false }
}

const fn opt(name: &'static str, ty: ColType) -> Column {
    Column { name, ty, nullable: true }
}

use ColType::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Agents,
    States,
    Messages,
    Surveys,
    Errors,
    Metrics,
    LlmCalls,
    Events,
}

pub const TABLES: [Table; 8] =
    [Table::Agents, Table::States, Table::Messages, Table::Surveys, Table::Errors, Table::Metrics, Table::LlmCalls, Table::Events];

/// The tick a row belongs to (-1 for what is recorded before tick 0). Added by migration 2, so
/// it is the last column of the tables of migration 1, and nullable: their older rows have none.
const TICK: Column = opt("tick", Int8);

/// `exp_id` is column 0 of every table (the partition key; the archive groups files by it).
static AGENTS: [Column; 5] = [col("exp_id", Text), col("agent_id", Text), col("ts", Timestamptz), col("profile", Jsonb), TICK];
static STATES: [Column; 5] = [col("exp_id", Text), col("agent_id", Text), col("ts", Timestamptz), col("state", Jsonb), TICK];
static MESSAGES: [Column; 8] = [
    col("exp_id", Text),
    opt("msg_id", Uuid),
    col("src", Text),
    opt("dst", Text),
    opt("kind", Text),
    col("ts", Timestamptz),
    col("payload", Jsonb),
    TICK,
];
/// One row per answered question (migration 3 added `question` to `valid`; older rows have one
/// row per form, its answers in `answers`). `form_id` is the survey's name, `answers` the answer
/// (null when it is invalid).
static SURVEYS: [Column; 10] = [
    col("exp_id", Text),
    col("agent_id", Text),
    col("ts", Timestamptz),
    col("form_id", Text),
    // Nullable since migration 3: an invalid answer has none.
    opt("answers", Jsonb),
    TICK,
    opt("question", Text),
    opt("raw", Text),
    opt("latency_ms", Float8),
    opt("valid", Bool),
];
static ERRORS: [Column; 6] =
    [col("exp_id", Text), col("ts", Timestamptz), opt("agent_id", Text), col("comp", Text), col("detail", Text), TICK];
static METRICS: [Column; 7] = [
    col("exp_id", Text),
    col("ts", Timestamptz),
    opt("agent_id", Text),
    col("name", Text),
    col("value", Float8),
    opt("labels", Jsonb),
    TICK,
];
/// One row per LLM call an agent made: replay finds a call by (agent_id, tick, call_index).
static LLM_CALLS: [Column; 13] = [
    col("exp_id", Text),
    col("agent_id", Text),
    col("tick", Int8),
    col("call_index", Int8),
    col("ts", Timestamptz),
    opt("model", Text),
    col("request_hash", Text),
    col("request", Jsonb),
    opt("response", Jsonb),
    opt("prompt_tokens", Int8),
    opt("completion_tokens", Int8),
    col("latency_ms", Float8),
    col("outcome", Text),
];

/// What an experimenter did to a running population (an intervention, a survey sent, a resume):
/// what happened when, in the run's own records.
static EVENTS: [Column; 6] =
    [col("exp_id", Text), col("ts", Timestamptz), col("tick", Int8), col("kind", Text), col("what", Jsonb), opt("who", Jsonb)];

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Agents => "agents",
            Table::States => "states",
            Table::Messages => "messages",
            Table::Surveys => "surveys",
            Table::Errors => "errors",
            Table::Metrics => "metrics",
            Table::LlmCalls => "llm_calls",
            Table::Events => "events",
        }
    }

    pub fn parse(name: &str) -> Result<Table> {
        TABLES.into_iter().find(|t| t.name() == name).ok_or_else(|| {
            let names: Vec<_> = TABLES.iter().map(|t| t.name()).collect();
            Error::InvalidArg(format!("unknown table `{name}`; tables: {}", names.join(", ")))
        })
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Agents => &AGENTS,
            Table::States => &STATES,
            Table::Messages => &MESSAGES,
            Table::Surveys => &SURVEYS,
            Table::Errors => &ERRORS,
            Table::Metrics => &METRICS,
            Table::LlmCalls => &LLM_CALLS,
            Table::Events => &EVENTS,
        }
    }

    /// `"c1", "c2", ...` in schema order, for COPY column lists.
    pub fn column_list(self) -> String {
        self.columns().iter().map(|c| format!("\"{}\"", c.name)).collect::<Vec<_>>().join(", ")
    }
}

/// A schema name as the user gives it: a plain lower-case SQL identifier, so it never needs quoting
/// rules beyond double quotes.
pub fn validate_schema_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArg(format!("schema `{name}` must match [a-z_][a-z0-9_]* (at most 63 bytes)")))
    }
}

/// One migration: a version and the statements that take the schema from version - 1 to it.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    /// `{s}` stands for the quoted schema name.
    pub statements: &'static [&'static str],
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tables, indexes and the batch ledger",
        statements: &[
            r#"CREATE TABLE IF NOT EXISTS {s}.agents (exp_id text NOT NULL, agent_id text NOT NULL, ts timestamptz NOT NULL, profile jsonb NOT NULL) PARTITION BY LIST (exp_id)"#,
            r#"CREATE TABLE IF NOT EXISTS {s}.states (exp_id text NOT NULL, agent_id text NOT NULL, ts timestamptz NOT NULL, state jsonb NOT NULL) PARTITION BY LIST (exp_id)"#,
            r#"CREATE TABLE IF NOT EXISTS {s}.messages (exp_id text NOT NULL, msg_id uuid, src text NOT NULL, dst text, kind text, ts timestamptz NOT NULL, payload jsonb NOT NULL) PARTITION BY LIST (exp_id)"#,
            r#"CREATE TABLE IF NOT EXISTS {s}.surveys (exp_id text NOT NULL, agent_id text NOT NULL, ts timestamptz NOT NULL, form_id text NOT NULL, answers jsonb NOT NULL) PARTITION BY LIST (exp_id)"#,
            r#"CREATE TABLE IF NOT EXISTS {s}.errors (exp_id text NOT NULL, ts timestamptz NOT NULL, agent_id text, comp text NOT NULL, detail text NOT NULL) PARTITION BY LIST (exp_id)"#,
            r#"CREATE TABLE IF NOT EXISTS {s}.metrics (exp_id text NOT NULL, ts timestamptz NOT NULL, agent_id text, name text NOT NULL, value double precision NOT NULL, labels jsonb) PARTITION BY LIST (exp_id)"#,
            r#"CREATE INDEX IF NOT EXISTS agents_exp_ts ON {s}.agents (exp_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS agents_agent_ts ON {s}.agents (agent_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS states_exp_ts ON {s}.states (exp_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS states_agent_ts ON {s}.states (agent_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS messages_exp_ts ON {s}.messages (exp_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS messages_src_ts ON {s}.messages (src, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS messages_dst_ts ON {s}.messages (dst, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS surveys_exp_ts ON {s}.surveys (exp_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS surveys_agent_ts ON {s}.surveys (agent_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS errors_exp_ts ON {s}.errors (exp_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS errors_agent_ts ON {s}.errors (agent_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS metrics_exp_ts ON {s}.metrics (exp_id, ts)"#,
            r#"CREATE INDEX IF NOT EXISTS metrics_agent_ts ON {s}.metrics (agent_id, ts)"#,
            // One row per committed batch, written in the batch's own transaction: a retry after an
            // unknown outcome (connection lost around COMMIT) looks its id up instead of writing twice.
            r#"CREATE TABLE IF NOT EXISTS {s}.myriad_batches (batch_id uuid PRIMARY KEY, tbl text NOT NULL, rows integer NOT NULL, committed_at timestamptz NOT NULL DEFAULT now())"#,
        ],
    },
    Migration {
        version: 2,
        name: "the tick of every row, and llm_calls",
        statements: &[
            // Nullable and without a default: rows written before have no tick, and adding the
            // column rewrites nothing (the partitions get it from their table).
            r#"ALTER TABLE {s}.agents ADD COLUMN IF NOT EXISTS tick bigint"#,
            r#"ALTER TABLE {s}.states ADD COLUMN IF NOT EXISTS tick bigint"#,
            r#"ALTER TABLE {s}.messages ADD COLUMN IF NOT EXISTS tick bigint"#,
            r#"ALTER TABLE {s}.surveys ADD COLUMN IF NOT EXISTS tick bigint"#,
            r#"ALTER TABLE {s}.errors ADD COLUMN IF NOT EXISTS tick bigint"#,
            r#"ALTER TABLE {s}.metrics ADD COLUMN IF NOT EXISTS tick bigint"#,
            r#"CREATE TABLE IF NOT EXISTS {s}.llm_calls (exp_id text NOT NULL, agent_id text NOT NULL, tick bigint NOT NULL, call_index bigint NOT NULL, ts timestamptz NOT NULL, model text, request_hash text NOT NULL, request jsonb NOT NULL, response jsonb, prompt_tokens bigint, completion_tokens bigint, latency_ms double precision NOT NULL, outcome text NOT NULL) PARTITION BY LIST (exp_id)"#,
            r#"CREATE INDEX IF NOT EXISTS llm_calls_exp_ts ON {s}.llm_calls (exp_id, ts)"#,
            // Replay looks a call up by agent, tick and call index.
            r#"CREATE INDEX IF NOT EXISTS llm_calls_agent_tick ON {s}.llm_calls (exp_id, agent_id, tick, call_index)"#,
        ],
    },
    Migration {
        version: 3,
        name: "survey answers per question, and events",
        statements: &[
            r#"ALTER TABLE {s}.surveys ALTER COLUMN answers DROP NOT NULL"#,
            r#"ALTER TABLE {s}.surveys ADD COLUMN IF NOT EXISTS question text"#,
            r#"ALTER TABLE {s}.surveys ADD COLUMN IF NOT EXISTS raw text"#,
            r#"ALTER TABLE {s}.surveys ADD COLUMN IF NOT EXISTS latency_ms double precision"#,
            r#"ALTER TABLE {s}.surveys ADD COLUMN IF NOT EXISTS valid boolean"#,
            r#"CREATE INDEX IF NOT EXISTS surveys_form_question ON {s}.surveys (exp_id, form_id, question)"#,
            r#"CREATE TABLE IF NOT EXISTS {s}.events (exp_id text NOT NULL, ts timestamptz NOT NULL, tick bigint NOT NULL, kind text NOT NULL, what jsonb NOT NULL, who jsonb) PARTITION BY LIST (exp_id)"#,
            r#"CREATE INDEX IF NOT EXISTS events_exp_tick ON {s}.events (exp_id, tick)"#,
        ],
    },
];

/// The DDL that gives `exp_id` its partition of `table` (idempotent). The partition's name is the
/// table's plus a hash of the id, so any id (quotes, spaces, 200 bytes) makes a valid identifier.
pub fn partition_ddl(schema: &str, table: Table, exp_id: &str) -> String {
    let name = partition_name(table, exp_id);
    let literal = exp_id.replace('\'', "''");
    format!(r#"CREATE TABLE IF NOT EXISTS "{schema}"."{name}" PARTITION OF "{schema}".{} FOR VALUES IN ('{literal}')"#, table.name())
}

pub fn partition_name(table: Table, exp_id: &str) -> String {
    format!("{}_p{:016x}", table.name(), xxhash_rust::xxh3::xxh3_64(exp_id.as_bytes()))
}
