//! The Postgres target: migrations, partitions, and writing a batch exactly once.
//!
//! Exactly once: a batch is one transaction that inserts its id into `myriad_batches` and COPYs its
//! rows. If the connection drops before COMMIT, nothing was written; if it drops around COMMIT, the
//! outcome is unknown, so every retry first looks the id up and skips the batch if it landed. The
//! primary key on the id settles even two writers racing with the same batch.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

use super::schema::{partition_ddl, Table, MIGRATIONS};
use crate::{Error, Result};

/// What the sink writes to Postgres: rows of one table, a binary COPY stream from header to trailer.
pub struct Batch {
    pub id: uuid::Uuid,
    pub seq: u64,
    pub table: Table,
    pub rows: usize,
    /// The experiments the rows belong to (their partitions must exist first).
    pub exps: Vec<String>,
    pub data: Vec<u8>,
    /// The id may already be in the ledger on the first attempt (import batches, whose ids are
    /// derived from the file), so look before writing.
    pub may_exist: bool,
    /// The pipeline's byte permits the rows hold until the batch is done (see `Pipeline::admit`).
    pub pending_bytes: usize,
}

pub struct PgTarget {
    options: PgConnectOptions,
    pub schema: String,
    connect_timeout: Duration,
    /// Partitions known to exist, so the DDL runs once per table and experiment.
    partitions: Mutex<HashSet<(Table, String)>>,
}

/// How a write attempt failed.
pub enum Failure {
    /// The connection or server failed: reconnect and try again.
    Transient(String),
    /// The server refused the data or the statement: retrying cannot help.
    Permanent(String),
}

impl PgTarget {
    pub fn new(dsn: &str, schema: &str, connect_timeout: Duration) -> Result<PgTarget> {
        let options = PgConnectOptions::from_str(dsn).map_err(|e| Error::InvalidArg(format!("dsn: {e}")))?;
        // What pg_stat_activity shows for the sink's connections, unless the DSN names it.
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("myriad-sink"),
        };
        Ok(PgTarget { options, schema: schema.into(), connect_timeout, partitions: Mutex::new(HashSet::new()) })
    }

    pub async fn connect(&self) -> std::result::Result<PgConnection, Failure> {
        match tokio::time::timeout(self.connect_timeout, PgConnection::connect_with(&self.options)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(Failure::Transient(format!("connecting took longer than {:?}", self.connect_timeout))),
        }
    }

    /// Brings the schema to the latest version. Serialised across processes by an advisory lock;
    /// each migration runs in its own transaction with its version row.
    pub async fn migrate(&self, conn: &mut PgConnection) -> std::result::Result<Vec<i32>, Failure> {
        let s = format!("\"{}\"", self.schema);
        let mut applied = Vec::new();
        let mut tx = conn.begin().await.map_err(classify)?;
        // 0x6d797269 = "myri": one lock key for every Myriad migrator on this database.
        sqlx::query("SELECT pg_advisory_xact_lock(1836675689)").execute(&mut *tx).await.map_err(classify)?;
        for ddl in [
            format!("CREATE SCHEMA IF NOT EXISTS {s}"),
            format!("CREATE TABLE IF NOT EXISTS {s}.myriad_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await.map_err(classify)?;
        }
        let done: Vec<i32> = sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {s}.myriad_migrations")))
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?;
        for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
            for statement in m.statements {
                sqlx::raw_sql(AssertSqlSafe(statement.replace("{s}", &s))).execute(&mut *tx).await.map_err(classify)?;
            }
            sqlx::query(AssertSqlSafe(format!("INSERT INTO {s}.myriad_migrations (version, name) VALUES ($1, $2)")))
                .bind(m.version)
                .bind(m.name)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            applied.push(m.version);
        }
        tx.commit().await.map_err(classify)?;
        Ok(applied)
    }

    async fn ensure_partitions(&self, conn: &mut PgConnection, batch: &Batch) -> std::result::Result<(), Failure> {
        for exp in &batch.exps {
            let key = (batch.table, exp.clone());
            if self.partitions.lock().unwrap().contains(&key) {
                continue;
            }
            match sqlx::raw_sql(AssertSqlSafe(partition_ddl(&self.schema, batch.table, exp))).execute(&mut *conn).await {
                Ok(_) => {}
                // Another writer created it between our IF NOT EXISTS check and our CREATE.
                Err(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("42P07") | Some("23505")) => {}
                // The experiment already has a partition made outside Myriad under another name
                // (42P17, "would overlap"), or a DEFAULT partition already holds rows of it
                // (23514): either way COPY into the parent routes the rows to a partition that
                // takes them, so there is nothing to create.
                Err(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("42P17") | Some("23514")) => {}
                Err(e) => return Err(classify(e)),
            }
            self.partitions.lock().unwrap().insert(key);
        }
        Ok(())
    }

    /// One attempt at writing `batch`. `retrying` makes it check first whether an earlier attempt
    /// committed after all.
    pub async fn write(&self, conn: &mut PgConnection, batch: &Batch, retrying: bool) -> std::result::Result<(), Failure> {
        self.ensure_partitions(conn, batch).await?;
        let s = &self.schema;
        let mut tx = conn.begin().await.map_err(classify)?;
        if retrying || batch.may_exist {
            let landed: bool =
                sqlx::query_scalar(AssertSqlSafe(format!(r#"SELECT EXISTS (SELECT 1 FROM "{s}".myriad_batches WHERE batch_id = $1)"#)))
                    .bind(batch.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(classify)?;
            if landed {
                return Ok(());
            }
        }
        sqlx::query(AssertSqlSafe(format!(r#"INSERT INTO "{s}".myriad_batches (batch_id, tbl, rows) VALUES ($1, $2, $3)"#)))
            .bind(batch.id)
            .bind(batch.table.name())
            .bind(batch.rows as i32)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let copy = format!(r#"COPY "{s}".{} ({}) FROM STDIN (FORMAT binary)"#, batch.table.name(), batch.table.column_list());
        let mut stream = tx.copy_in_raw(&copy).await.map_err(classify)?;
        for chunk in batch.data.chunks(256 << 10) {
            if let Err(e) = stream.send(chunk).await {
                let _ = stream.abort("send failed").await;
                return Err(classify(e));
            }
        }
        stream.finish().await.map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    /// Forgets the partitions of `batch` (after a permanent failure: one may have been dropped).
    pub fn forget_partitions(&self, batch: &Batch) {
        let mut known = self.partitions.lock().unwrap();
        for exp in &batch.exps {
            known.remove(&(batch.table, exp.clone()));
        }
    }
}

/// Whether `schema.table` exists (a database the sink never wrote to has none of its tables).
pub(super) async fn table_exists(conn: &mut PgConnection, schema: &str, table: Table) -> std::result::Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(format!("\"{schema}\".{}", table.name())).fetch_one(conn).await
}

/// Connection-level trouble (and the server shutting down or running short) is worth a retry on a
/// new connection; anything the server says about the data or the statement is not.
fn classify(e: sqlx::Error) -> Failure {
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let transient = ["08", "53", "57", "58"].iter().any(|class| code.starts_with(class)) || code == "40001" || code == "40P01";
            let message = format!("{e} (SQLSTATE {code})");
            if transient {
                Failure::Transient(message)
            } else {
                Failure::Permanent(message)
            }
        }
        sqlx::Error::Configuration(_) | sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::TypeNotFound { .. } => {
            Failure::Permanent(e.to_string())
        }
        _ => Failure::Transient(e.to_string()),
    }
}
