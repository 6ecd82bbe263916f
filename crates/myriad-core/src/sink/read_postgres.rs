//! Reading a table's rows back from Postgres, as JSON rows of the shape [`super::read_archive`]
//! gives (times epoch milliseconds, uuids strings, jsonb the JSON itself): a replay, a report or
//! a check reads a run the same way wherever it was recorded.

use std::time::Duration;

use sqlx::AssertSqlSafe;

use super::pipeline::connect_error;
use super::postgres::{table_exists, PgTarget};
use super::schema::{validate_schema_name, ColType, Table};
use crate::{Error, Result};

/// The rows of experiment `exp` in `table` under `schema`, ordered by tick (rows without one
/// first) and time: a JSON array of rows keyed by column name, every column present. A schema
/// without the table (nothing was ever recorded there) gives `[]`.
pub async fn read_postgres(dsn: &str, schema: &str, table: Table, exp: &str) -> Result<String> {
    validate_schema_name(schema)?;
    let target = PgTarget::new(dsn, schema, Duration::from_secs(10))?;
    let mut conn = target.connect().await.map_err(connect_error)?;
    if !table_exists(&mut conn, schema, table).await.map_err(|e| Error::SinkRead(e.to_string()))? {
        return Ok("[]".into());
    }
    let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(select(schema, table)))
        .bind(exp)
        .fetch_all(&mut conn)
        .await
        .map_err(|e| Error::SinkRead(e.to_string()))?;
    let mut out = String::with_capacity(2 + rows.iter().map(|r| r.len() + 1).sum::<usize>());
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(row);
    }
    out.push(']');
    Ok(out)
}

/// One `json_build_object` per row, each column converted to what the archive read gives.
fn select(schema: &str, table: Table) -> String {
    let fields: Vec<String> = table
        .columns()
        .iter()
        .map(|c| {
            let n = c.name;
            let value = match c.ty {
                ColType::Timestamptz => format!("(extract(epoch FROM {n}) * 1000)::float8"),
                ColType::Uuid => format!("{n}::text"),
                // NaN and the infinities have no JSON form: the archive read gives them as null too.
                ColType::Float8 => format!("CASE WHEN {n} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {n} END"),
                ColType::Text | ColType::Jsonb | ColType::Int8 | ColType::Bool => n.to_string(),
            };
            format!("'{n}', {value}")
        })
        .collect();
    format!(
        r#"SELECT json_build_object({})::text FROM "{schema}".{} WHERE exp_id = $1 ORDER BY tick NULLS FIRST, ts"#,
        fields.join(", "),
        table.name()
    )
}
