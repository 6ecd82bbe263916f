//! Rows arrive as one JSON array (what `JSON.stringify(rows)` makes on the JS side: one native call
//! per batch, and V8's serializer is the cheapest way out of the JS heap). Each row is checked
//! against its table before anything reaches a database or file: a row that Postgres would refuse
//! (missing column, wrong type, NUL character, lone surrogate, NaN) is rejected here with a reason,
//! so a batch never fails on the server because of one bad row.

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::schema::{ColType, Table};
use crate::{Error, Result};

/// One checked value, ready for either encoder.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Uuid([u8; 16]),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Valid JSON text (Postgres-safe: no `\u0000`, no lone surrogates).
    Json(Cow<'a, str>),
    Float(f64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
}

/// Checks every row of `json` (a JSON array of row objects) against `table`: each good row's cells
/// go to `accept` with the row's index, each bad row becomes a `Rejected`. The array is split
/// without decoding the rows, so one bad row cannot spoil the rest.
pub fn check_rows(table: Table, json: &str, mut accept: impl FnMut(usize, &[Cell])) -> Result<Vec<Rejected>> {
    let rows: Vec<&RawValue> =
        serde_json::from_str(json).map_err(|e| Error::InvalidArg(format!("rows must be a JSON array of objects: {e}")))?;
    let mut rejected = Vec::new();
    let mut cells = Vec::with_capacity(8);
    for (index, row) in rows.iter().enumerate() {
        match check_row(table, row, &mut cells) {
            Ok(()) => accept(index, &cells),
            Err(reason) => rejected.push(Rejected { index, reason }),
        }
    }
    Ok(rejected)
}

/// Checks one row (a JSON object keyed by column name) and fills `cells` in the table's column order.
fn check_row<'a>(table: Table, row: &'a RawValue, cells: &mut Vec<Cell<'a>>) -> std::result::Result<(), String> {
    let columns = table.columns();
    let mut slots: [Option<&'a RawValue>; 8] = [None; 8];
    let fields = Fields::parse(row.get())?;
    for (key, value) in fields.0 {
        let at = columns.iter().position(|c| c.name == key).ok_or_else(|| format!("unknown column `{key}` for table {}", table.name()))?;
        slots[at] = Some(value);
    }
    cells.clear();
    for (column, slot) in columns.iter().zip(slots) {
        let raw = slot.map(|v| v.get()).filter(|v| *v != "null");
        let cell = match raw {
            None if column.nullable => Cell::Null,
            None => return Err(format!("`{}` is required{}", column.name, nan_hint(column.ty))),
            Some(raw) => cell(column.ty, raw).map_err(|e| format!("`{}`: {e}", column.name))?,
        };
        cells.push(cell);
    }
    Ok(())
}

fn nan_hint(ty: ColType) -> &'static str {
    match ty {
        ColType::Float8 => " (NaN and Infinity become null in JSON: a number column needs a finite number)",
        ColType::Timestamptz => " (an invalid Date becomes null in JSON)",
        _ => "",
    }
}

fn cell(ty: ColType, raw: &str) -> std::result::Result<Cell<'_>, String> {
    match ty {
        ColType::Text => Ok(Cell::Text(text(raw)?)),
        ColType::Uuid => {
            let s = text(raw)?;
            uuid::Uuid::try_parse(&s).map(|u| Cell::Uuid(*u.as_bytes())).map_err(|_| format!("`{s}` is not a UUID"))
        }
        ColType::Timestamptz => timestamp(raw).map(Cell::Timestamp),
        ColType::Jsonb => json(raw).map(|()| Cell::Json(Cow::Borrowed(raw))),
        ColType::Float8 => match serde_json::from_str::<f64>(raw) {
            Ok(v) if v.is_finite() => Ok(Cell::Float(v)),
            _ => Err(format!("expected a finite number, got {}", preview(raw))),
        },
    }
}

/// A JSON string's value; borrowed when it has no escapes (the common case).
fn text(raw: &str) -> std::result::Result<Cow<'_, str>, String> {
    if !raw.starts_with('"') {
        return Err(format!("expected a string, got {}", preview(raw)));
    }
    let inner = &raw[1..raw.len() - 1];
    let value = if inner.contains('\\') {
        Cow::Owned(serde_json::from_str::<String>(raw).map_err(|e| format!("invalid text ({e}): lone UTF-16 surrogates cannot be stored"))?)
    } else {
        Cow::Borrowed(inner)
    };
    if value.contains('\0') {
        return Err("contains a NUL character, which Postgres text cannot store".into());
    }
    Ok(value)
}

/// Postgres jsonb refuses `\u0000` and unpaired surrogate escapes; everything else valid JSON is
/// fine. The raw text is already valid JSON (it came out of the row's parse), so only escapes need
/// a look, and backslashes only occur inside strings.
fn json(raw: &str) -> std::result::Result<(), String> {
    let b = raw.as_bytes();
    let mut i = 0;
    let mut pending_high = false;
    const LONE: &str = "contains a lone UTF-16 surrogate, which Postgres jsonb cannot store";
    while let Some(off) = b[i..].iter().position(|&c| c == b'\\') {
        let at = i + off;
        if b.get(at + 1) != Some(&b'u') {
            if pending_high {
                return Err(LONE.into());
            }
            i = at + 2; // `\\`, `\"`, `\n`...: skipping both bytes keeps `\\u0000` (plain text) from looking like an escape
            continue;
        }
        let hex = raw.get(at + 2..at + 6).and_then(|h| u16::from_str_radix(h, 16).ok());
        let Some(unit) = hex else { return Err("invalid \\u escape".into()) };
        let low = (0xDC00..0xE000).contains(&unit);
        if pending_high {
            // A high surrogate must be followed at once by a low one.
            if !(low && at == i) {
                return Err(LONE.into());
            }
            pending_high = false;
        } else if unit == 0 {
            return Err("contains \\u0000, which Postgres jsonb cannot store".into());
        } else if low {
            return Err(LONE.into());
        } else {
            pending_high = (0xD800..0xDC00).contains(&unit);
        }
        i = at + 6;
    }
    if pending_high {
        return Err(LONE.into());
    }
    Ok(())
}

/// Postgres timestamps run from 4714-11-24 BC to 294276 AD; JS Dates reach ±8.64e15 ms (±275,760
/// years), so anything JS can make fits except times before 4714 BC.
const MIN_MICROS: i64 = -210_866_760_000_000_000;
const MAX_MICROS: i64 = 8_640_000_000_000_000_000;

fn timestamp(raw: &str) -> std::result::Result<i64, String> {
    let micros = if raw.starts_with('"') {
        let s = text(raw)?;
        chrono::DateTime::parse_from_rfc3339(&s)
            .map_err(|_| format!("`{s}` is not an RFC 3339 / ISO 8601 time with offset (what Date.toISOString() makes)"))?
            .timestamp_micros()
    } else {
        let ms: f64 = serde_json::from_str(raw).map_err(|_| format!("expected an ISO 8601 string or epoch milliseconds, got {}", preview(raw)))?;
        if !ms.is_finite() {
            return Err("epoch milliseconds must be finite".into());
        }
        (ms * 1000.0).round() as i64
    };
    if !(MIN_MICROS..=MAX_MICROS).contains(&micros) {
        return Err("outside the range Postgres timestamps can hold".into());
    }
    Ok(micros)
}

fn preview(raw: &str) -> String {
    let mut s: String = raw.chars().take(40).collect();
    if s.len() < raw.len() {
        s.push('…');
    }
    s
}

/// A row's fields in order, values left as raw JSON.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    fn parse(raw: &'a str) -> std::result::Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(raw);
        de.deserialize_map(FieldsVisitor).map_err(|e| {
            if raw.starts_with('{') {
                format!("invalid row: {e}")
            } else {
                format!("a row must be an object keyed by column name, got {}", preview(raw))
            }
        })
    }
}

struct FieldsVisitor;

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object keyed by column name")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(8);
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            fields.push((key, value));
        }
        Ok(Fields(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(table: Table, row: &str) -> std::result::Result<Vec<Cell<'static>>, String> {
        let raw: &'static RawValue = Box::leak(RawValue::from_string(row.to_string()).unwrap());
        let mut cells = Vec::new();
        check_row(table, raw, &mut cells).map(|()| cells)
    }

    #[test]
    fn a_message_row_becomes_cells_in_column_order() {
        let cells = check(
            Table::Messages,
            r#"{"payload":{"a":[1,"x"]},"ts":"2026-11-29T14:00:00.250Z","src":"a1","exp_id":"e","msg_id":"0e2a4c1e-55aa-4c8b-9f34-5b8a4b2f7c11"}"#,
        )
        .unwrap();
        assert_eq!(cells[0], Cell::Text("e".into()));
        assert!(matches!(cells[1], Cell::Uuid(u) if u[0] == 0x0e && u[15] == 0x11));
        assert_eq!(cells[2], Cell::Text("a1".into()));
        assert_eq!((cells[3].clone(), cells[4].clone()), (Cell::Null, Cell::Null));
        assert_eq!(cells[5], Cell::Timestamp(1_795_960_800_250_000));
        assert_eq!(cells[6], Cell::Json(r#"{"a":[1,"x"]}"#.into()));
    }

    #[test]
    fn epoch_milliseconds_and_offsets_are_times() {
        let row = |ts: &str| format!(r#"{{"exp_id":"e","agent_id":"a","ts":{ts},"state":{{}}}}"#);
        assert_eq!(check(Table::States, &row("1795960800250")).unwrap()[2], Cell::Timestamp(1_795_960_800_250_000));
        assert_eq!(check(Table::States, &row(r#""2026-11-29T15:00:00.250+01:00""#)).unwrap()[2], Cell::Timestamp(1_795_960_800_250_000));
    }

    #[test]
    fn bad_rows_are_rejected_with_a_reason() {
        let cases = [
            (r#"{"exp_id":"e","agent_id":"a","ts":null,"state":{}}"#, "`ts` is required (an invalid Date"),
            (r#"{"exp_id":"e","agent_id":"a","state":{}}"#, "`ts` is required"),
            (r#"{"exp_id":"e","agent_id":"a","ts":"yesterday","state":{}}"#, "`ts`: `yesterday` is not an RFC 3339"),
            (r#"{"exp_id":"e","agent_id":7,"ts":1,"state":{}}"#, "`agent_id`: expected a string, got 7"),
            (r#"{"exp_id":"e","agent_id":"a\u0000b","ts":1,"state":{}}"#, "NUL character"),
            (r#"{"exp_id":"e","agent_id":"\ud800","ts":1,"state":{}}"#, "lone UTF-16 surrogates"),
            (r#"{"exp_id":"e","agent_id":"a","ts":1,"state":{"x":"\u0000"}}"#, "\\u0000"),
            (r#"{"exp_id":"e","agent_id":"a","ts":1,"state":{"x":"\udc00"}}"#, "lone UTF-16 surrogate"),
            (r#"{"exp_id":"e","agent_id":"a","ts":1,"state":{"x":"\ud83d!"}}"#, "lone UTF-16 surrogate"),
            (r#"{"exp_id":"e","agent_id":"a","ts":1,"state":{},"mood":1}"#, "unknown column `mood`"),
            (r#"[1,2]"#, "must be an object"),
        ];
        for (row, reason) in cases {
            let err = check(Table::States, row).unwrap_err();
            assert!(err.contains(reason), "{row}: {err}");
        }
        let nan = check(Table::Metrics, r#"{"exp_id":"e","ts":1,"name":"gdp","value":null}"#).unwrap_err();
        assert!(nan.contains("NaN"), "{nan}");
        let uuid = check(Table::Messages, r#"{"exp_id":"e","msg_id":"nope","src":"a","ts":1,"payload":1}"#).unwrap_err();
        assert!(uuid.contains("not a UUID"), "{uuid}");
    }

    #[test]
    fn escapes_that_postgres_accepts_pass() {
        let ok = r#"{"exp_id":"e","agent_id":"a\"b\\","ts":1,"state":{"x":"\ud83d\ude00 \\u0000 \n"}}"#;
        let cells = check(Table::States, ok).unwrap();
        assert_eq!(cells[1], Cell::Text(Cow::Owned("a\"b\\".into())));
    }
}
