//! A call's rows, checked. They come as one JSON array of row objects keyed by column name (the
//! keyed form), or in the column form the TypeScript layer sends (`columns.rs`), which carries
//! keyed rows for the odd ones. Times are ISO 8601 strings with an offset or epoch milliseconds.
//! Each row is checked against its table before anything reaches a database or file: a row that
//! Postgres would refuse (missing column, wrong type, NUL character, lone surrogate, NaN) is
//! rejected here with a reason, so a batch never fails on the server because of one bad row.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::columns::{check_columns, Columns};
use super::schema::{ColType, Column, Table};
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
    Int(i64),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
}

/// Checks every row of `json` (a JSON array of rows) against `table`: each good row's cells go to
/// `accept` with the row's index, each bad row becomes a `Rejected`. One pass over the text: each
/// row's values are captured as raw JSON slices as the array is read, so a bad row is rejected on
/// its own and the rest go on.
pub fn check_rows<'a>(table: Table, json: &'a str, accept: impl FnMut(usize, &[Cell<'a>])) -> Result<Vec<Rejected>> {
    let mut checker = Checker { table, accept, rejected: Vec::new(), cells: Vec::with_capacity(8) };
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_seq(&mut checker)
        .and_then(|()| de.end())
        .map_err(|e| Error::InvalidArg(format!("rows must be a JSON array of rows: {e}")))?;
    Ok(checker.rejected)
}

/// A call's rows as they cross from JS: one JSON array of rows, or the column form.
pub enum Rows<'a> {
    Json(&'a str),
    Columns(Columns<'a>),
}

/// Checks every row of a call, in either form: see [`check_rows`] and [`check_columns`].
pub fn check<'a>(table: Table, rows: &Rows<'a>, accept: impl FnMut(usize, &[Cell<'a>])) -> Result<Vec<Rejected>> {
    match rows {
        Rows::Json(json) => check_rows(table, json, accept),
        Rows::Columns(columns) => check_columns(table, columns, accept),
    }
}

/// A row's values in the table's column order, as raw JSON (`None`: absent).
pub(super) type Slots<'a> = [Option<&'a RawValue>; MAX_COLUMNS];
const MAX_COLUMNS: usize = 16;

struct Checker<'a, F> {
    table: Table,
    accept: F,
    rejected: Vec<Rejected>,
    cells: Vec<Cell<'a>>,
}

impl<'de, F: FnMut(usize, &[Cell<'de>])> Visitor<'de> for &mut Checker<'de, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut rows: A) -> std::result::Result<(), A::Error> {
        let mut index = 0;
        while let Some(slots) = rows.next_element_seed(RowVisitor(self.table))? {
            match slots.and_then(|slots| fill_cells(self.table, &slots, &mut self.cells)) {
                Ok(()) => (self.accept)(index, &self.cells),
                Err(reason) => self.rejected.push(Rejected { index, reason }),
            }
            index += 1;
        }
        Ok(())
    }
}

/// Reads one row (an object keyed by column name) into slots; what is not a row (an array, a
/// string, null...) is a reason, not a parse error, so the call goes on.
#[derive(Clone, Copy)]
pub(super) struct RowVisitor(pub(super) Table);

pub(super) type RowResult<'a> = std::result::Result<Slots<'a>, String>;

impl<'de> DeserializeSeed<'de> for RowVisitor {
    type Value = RowResult<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl RowVisitor {
    fn not_a_row<'a, E>(got: impl std::fmt::Display) -> std::result::Result<RowResult<'a>, E> {
        Ok(Err(format!("a row must be an object keyed by column name, got {}", preview(&got.to_string()))))
    }
}

impl<'de> Visitor<'de> for RowVisitor {
    type Value = RowResult<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let columns = self.0.columns();
        let mut slots: Slots<'de> = [None; MAX_COLUMNS];
        let mut unknown = None;
        while let Some(Key(key)) = map.next_key()? {
            match columns.iter().position(|c| c.name == key) {
                Some(at) => slots[at] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                    unknown.get_or_insert_with(|| format!("unknown column `{key}` for table {}", self.0.name()));
                }
            }
        }
        Ok(unknown.map_or(Ok(slots), Err))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut values: A) -> std::result::Result<Self::Value, A::Error> {
        while values.next_element::<IgnoredAny>()?.is_some() {}
        Self::not_a_row("an array")
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Self::not_a_row("null")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Self::not_a_row(v)
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Self::not_a_row(v)
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Self::not_a_row(v)
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Self::not_a_row(v)
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Self::not_a_row(format_args!("{v:?}"))
    }
}

/// Checks a row's values and fills `cells` in the table's column order.
pub(super) fn fill_cells<'a>(table: Table, slots: &Slots<'a>, cells: &mut Vec<Cell<'a>>) -> std::result::Result<(), String> {
    cells.clear();
    for (column, slot) in table.columns().iter().zip(slots) {
        let raw = slot.map(|v| v.get()).filter(|v| *v != "null");
        let cell = match raw {
            None => null_cell(column)?,
            Some(raw) => cell(column.ty, raw).map_err(|e| format!("`{}`: {e}", column.name))?,
        };
        cells.push(cell);
    }
    Ok(())
}

/// An absent or null value: fine in a nullable column, a reason otherwise.
pub(super) fn null_cell(column: &Column) -> std::result::Result<Cell<'static>, String> {
    if column.nullable {
        Ok(Cell::Null)
    } else {
        Err(format!("`{}` is required{}", column.name, nan_hint(column.ty)))
    }
}

fn nan_hint(ty: ColType) -> &'static str {
    match ty {
        ColType::Float8 | ColType::Int8 => " (NaN and Infinity become null in JSON: a number column needs a finite number)",
        ColType::Timestamptz => " (an invalid Date becomes null in JSON)",
        _ => "",
    }
}

fn cell(ty: ColType, raw: &str) -> std::result::Result<Cell<'_>, String> {
    match ty {
        ColType::Text | ColType::Uuid => text_cell(ty, string(raw)?),
        ColType::Timestamptz => timestamp(raw).map(Cell::Timestamp),
        ColType::Jsonb => json_cell(raw),
        ColType::Float8 => match serde_json::from_str::<f64>(raw) {
            Ok(v) if v.is_finite() => Ok(Cell::Float(v)),
            _ => Err(format!("expected a finite number, got {}", preview(raw))),
        },
        // Read as JS reads a number, so that both forms give the same cells and reasons.
        ColType::Int8 => match serde_json::from_str::<f64>(raw) {
            Ok(v) => int_cell(v),
            Err(_) => Err(format!("expected an integer, got {}", preview(raw))),
        },
        ColType::Bool => match raw {
            "true" => Ok(Cell::Bool(true)),
            "false" => Ok(Cell::Bool(false)),
            _ => Err(format!("expected true or false, got {}", preview(raw))),
        },
    }
}

/// The largest integer a JS number (an f64) holds exactly: `Number.MAX_SAFE_INTEGER`.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// An int8 column's value, from a number as JS has it: an integer of at most 2^53 - 1 in
/// magnitude (beyond, a JS number no longer tells neighbouring integers apart).
pub(super) fn int_cell(v: f64) -> std::result::Result<Cell<'static>, String> {
    if v.fract() != 0.0 || !v.is_finite() {
        return Err(format!("expected an integer, got {v}"));
    }
    if v.abs() > MAX_SAFE_INTEGER {
        return Err(format!("{v} is outside the integers a JS number holds exactly (at most 2^53 - 1 in magnitude)"));
    }
    Ok(Cell::Int(v as i64))
}

/// A text or uuid column's value, from the string itself.
pub(super) fn text_cell(ty: ColType, value: Cow<'_, str>) -> std::result::Result<Cell<'_>, String> {
    if value.contains('\0') {
        return Err("contains a NUL character, which Postgres text cannot store".into());
    }
    match ty {
        ColType::Uuid => uuid::Uuid::try_parse(&value).map(|u| Cell::Uuid(*u.as_bytes())).map_err(|_| format!("`{value}` is not a UUID")),
        _ => Ok(Cell::Text(value)),
    }
}

/// A JSON string's value; borrowed when it has no escapes (the common case).
fn string(raw: &str) -> std::result::Result<Cow<'_, str>, String> {
    if !raw.starts_with('"') {
        return Err(format!("expected a string, got {}", preview(raw)));
    }
    let inner = &raw[1..raw.len() - 1];
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|e| format!("invalid text ({e}): lone UTF-16 surrogates cannot be stored"))
    } else {
        Ok(Cow::Borrowed(inner))
    }
}

/// A jsonb column's value: raw JSON text that Postgres accepts.
pub(super) fn json_cell(raw: &str) -> std::result::Result<Cell<'_>, String> {
    json(raw).map(|()| Cell::Json(Cow::Borrowed(raw)))
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
    if !raw.starts_with('"') {
        let ms: f64 =
            serde_json::from_str(raw).map_err(|_| format!("expected an ISO 8601 string or epoch milliseconds, got {}", preview(raw)))?;
        return micros_from_ms(ms);
    }
    let s = string(raw)?;
    let micros = chrono::DateTime::parse_from_rfc3339(&s)
        .map_err(|_| format!("`{s}` is not an RFC 3339 / ISO 8601 time with offset (what Date.toISOString() makes)"))?
        .timestamp_micros();
    in_range(micros)
}

/// Epoch milliseconds (a JS `Date`'s time value) as microseconds.
pub(super) fn micros_from_ms(ms: f64) -> std::result::Result<i64, String> {
    if !ms.is_finite() {
        return Err("epoch milliseconds must be finite".into());
    }
    in_range((ms * 1000.0).round() as i64)
}

fn in_range(micros: i64) -> std::result::Result<i64, String> {
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

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

#[cfg(test)]
mod tests {
    use super::*;

    /// One row's cells, or its rejection.
    fn check(table: Table, row: &str) -> std::result::Result<Vec<Cell<'static>>, String> {
        let json: &'static str = Box::leak(format!("[{row}]").into_boxed_str());
        let mut cells = None;
        let mut rejected = check_rows(table, json, |_, c| cells = Some(c.to_vec())).unwrap();
        match rejected.pop() {
            Some(r) => Err(r.reason),
            None => Ok(cells.expect("accepted")),
        }
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
    fn one_bad_row_does_not_spoil_its_neighbours() {
        let json = r#"[{"exp_id":"e","agent_id":"a","ts":1,"state":{}},"text",{"exp_id":"e","mood":[1,{"x":2}],"agent_id":"a","ts":1,"state":{}},{"exp_id":"e","agent_id":"b","ts":2,"state":[]},[1,{"a":[]}],null]"#;
        let mut accepted = Vec::new();
        let rejected = check_rows(Table::States, json, |i, cells| accepted.push((i, cells[1].clone()))).unwrap();
        assert_eq!(accepted, [(0, Cell::Text("a".into())), (3, Cell::Text("b".into()))]);
        let reasons: Vec<_> = rejected.iter().map(|r| (r.index, r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (1, r#"a row must be an object keyed by column name, got "text""#),
                (2, "unknown column `mood` for table states"),
                (4, "a row must be an object keyed by column name, got an array"),
                (5, "a row must be an object keyed by column name, got null"),
            ]
        );
        let err = check_rows(Table::States, r#"[{"exp_id":"e"}"#, |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("rows must be a JSON array"), "{err}");
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
            (r#"["e","a",1,{}]"#, "must be an object keyed by column name, got an array"),
            (r#"7"#, "must be an object"),
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
    fn an_int8_value_is_an_integer_a_js_number_holds_exactly() {
        let row = |tick: &str| format!(r#"{{"exp_id":"e","agent_id":"a","ts":1,"state":{{}},"tick":{tick}}}"#);
        for (tick, cell) in [("41", Cell::Int(41)), ("-1", Cell::Int(-1)), ("2.0", Cell::Int(2)), ("null", Cell::Null)] {
            assert_eq!(check(Table::States, &row(tick)).unwrap()[4], cell, "{tick}");
        }
        assert_eq!(check(Table::States, r#"{"exp_id":"e","agent_id":"a","ts":1,"state":{}}"#).unwrap()[4], Cell::Null);
        for (tick, reason) in [
            ("1.5", "`tick`: expected an integer, got 1.5"),
            (r#""3""#, r#"`tick`: expected an integer, got "3""#),
            ("9007199254740992", "`tick`: 9007199254740992 is outside the integers a JS number holds exactly"),
        ] {
            let err = check(Table::States, &row(tick)).unwrap_err();
            assert!(err.starts_with(reason), "{tick}: {err}");
        }
        let call = r#"{"exp_id":"e","agent_id":"a","call_index":0,"ts":1,"request_hash":"h","request":{},"latency_ms":1,"outcome":"ok"}"#;
        let err = check(Table::LlmCalls, call).unwrap_err();
        assert!(err.starts_with("`tick` is required"), "{err}");
    }

    #[test]
    fn escapes_that_postgres_accepts_pass() {
        let ok = r#"{"exp_id":"e","agent_id":"a\"b\\","ts":1,"state":{"x":"\ud83d\ude00 \\u0000 \n"}}"#;
        let cells = check(Table::States, ok).unwrap();
        assert_eq!(cells[1], Cell::Text(Cow::Owned("a\"b\\".into())));
    }
}
