//! Taking a run's records in Postgres back to a tick: what a resumed run does first, so that the
//! rows written after its checkpoint (by the run that died) are not there twice.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection};

use super::pipeline::connect_error;
use super::postgres::{table_exists, PgTarget};
use super::schema::{validate_schema_name, TABLES};
use crate::{Error, Result};

/// Deletes experiment `exp`'s rows of tick `from_tick` and later from every table, in one
/// transaction; returns how many. Tables that do not exist yet are skipped.
pub async fn rewind_postgres(dsn: &str, schema: &str, exp: &str, from_tick: i64) -> Result<u64> {
    validate_schema_name(schema)?;
    let target = PgTarget::new(dsn, schema, Duration::from_secs(10))?;
    let mut conn = target.connect().await.map_err(connect_error)?;
    let failed = |e: sqlx::Error| Error::SinkWrite(format!("rewinding {exp} to tick {from_tick}: {e}"));
    let mut tx = conn.begin().await.map_err(failed)?;
    let mut deleted = 0;
    for table in TABLES {
        if table_exists(&mut tx, schema, table).await.map_err(failed)? {
            let sql = format!(r#"DELETE FROM "{schema}".{} WHERE exp_id = $1 AND tick >= $2"#, table.name());
            deleted += sqlx::query(AssertSqlSafe(sql)).bind(exp).bind(from_tick).execute(&mut *tx).await.map_err(failed)?.rows_affected();
        }
    }
    tx.commit().await.map_err(failed)?;
    Ok(deleted)
}
