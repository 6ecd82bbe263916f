//! The column form of a call's rows: how the TypeScript layer sends rows of the usual shape
//! (`src/sink/rows.ts`). JSON.stringify spent most of the JS thread's time on the strings, numbers
//! and per-row arrays; here those values cross without it: every text and uuid value as one piece
//! of a joined string, every time and number in a `Float64Array`. Only jsonb values still go
//! through JSON.stringify, all of a call's in one array. A row of an unusual shape (an unknown key,
//! an ISO string time, a number where text belongs) goes whole as JSON, the keyed form, and gets
//! exactly the checks of [`super::rows::check_rows`]; both forms give the same cells and reasons.

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::rows::{fill_cells, int_cell, json_cell, micros_from_ms, null_cell, text_cell, Cell, Rejected, RowVisitor};
use super::schema::{ColType, Table};
use crate::{Error, Result};

/// A text or uuid value of a row in column form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Null,
    Text(&'a str),
    /// The JS string held a lone UTF-16 surrogate, which UTF-8 (and Postgres) cannot hold.
    LoneSurrogate,
}

/// A call's rows, each either in column form or keyed (see the module doc).
pub struct Columns<'a> {
    /// One entry per row: true when the row went whole as JSON.
    pub keyed: &'a [bool],
    /// The text and uuid values of the column-form rows, row by row, in column order.
    pub pieces: &'a [Piece<'a>],
    /// Their timestamptz (epoch milliseconds), float8 and int8 values, in the same order. NaN and
    /// the infinities stand for null, as JSON.stringify would have made them; an int8 value that
    /// is not an integer (or beyond 2^53 - 1) rejects its row.
    pub numbers: &'a [f64],
    /// A JSON array: for each column-form row its jsonb values in column order, for each keyed
    /// row the row itself.
    pub json: &'a str,
}

/// [`super::rows::check_rows`] for rows in column form.
pub fn check_columns<'a>(table: Table, rows: &Columns<'a>, accept: impl FnMut(usize, &[Cell<'a>])) -> Result<Vec<Rejected>> {
    let columns = table.columns();
    let per_row = |pick: fn(ColType) -> bool| columns.iter().filter(|c| pick(c.ty)).count();
    let column_rows = rows.keyed.iter().filter(|&&k| !k).count();
    let texts = per_row(|t| matches!(t, ColType::Text | ColType::Uuid));
    let numbers = per_row(|t| matches!(t, ColType::Timestamptz | ColType::Float8 | ColType::Int8 | ColType::Bool));
    if rows.pieces.len() != column_rows * texts || rows.numbers.len() != column_rows * numbers {
        return Err(Error::InvalidArg(format!(
            "rows in column form: {column_rows} rows of table {} need {} text and {} number values, got {} and {}",
            table.name(),
            column_rows * texts,
            column_rows * numbers,
            rows.pieces.len(),
            rows.numbers.len()
        )));
    }
    let mut checker = Checker { table, rows, accept, rejected: Vec::new(), cells: Vec::with_capacity(8) };
    let mut de = serde_json::Deserializer::from_str(rows.json);
    de.deserialize_seq(&mut checker)
        .and_then(|()| de.end())
        .map_err(|e| Error::InvalidArg(format!("rows in column form: bad JSON values: {e}")))?;
    Ok(checker.rejected)
}

struct Checker<'r, 'a, F> {
    table: Table,
    rows: &'r Columns<'a>,
    accept: F,
    rejected: Vec<Rejected>,
    cells: Vec<Cell<'a>>,
}

impl<'a, F: FnMut(usize, &[Cell<'a>])> Visitor<'a> for &mut Checker<'_, 'a, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of jsonb values and keyed rows")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut json: A) -> std::result::Result<(), A::Error> {
        let missing = || serde::de::Error::custom("fewer values than the rows need");
        let (mut piece, mut number) = (0, 0);
        for (index, &keyed) in self.rows.keyed.iter().enumerate() {
            let outcome = if keyed {
                let slots = json.next_element_seed(RowVisitor(self.table))?.ok_or_else(missing)?;
                slots.and_then(|slots| fill_cells(self.table, &slots, &mut self.cells))
            } else {
                // Every value of the row is taken, even after a bad one, so the next row starts
                // where it should.
                self.cells.clear();
                let mut reason = None;
                for column in self.table.columns() {
                    let cell = match column.ty {
                        ColType::Text | ColType::Uuid => {
                            piece += 1;
                            match self.rows.pieces[piece - 1] {
                                Piece::Null => null_cell(column),
                                Piece::Text(s) => text_cell(column.ty, s.into()).map_err(|e| format!("`{}`: {e}", column.name)),
                                Piece::LoneSurrogate => {
                                    Err(format!("`{}`: invalid text: lone UTF-16 surrogates cannot be stored", column.name))
                                }
                            }
                        }
                        ColType::Timestamptz | ColType::Float8 | ColType::Int8 | ColType::Bool => {
                            number += 1;
                            match self.rows.numbers[number - 1] {
                                v if !v.is_finite() => null_cell(column),
                                // A boolean crosses as 1 or 0 (rows.ts).
                                v if column.ty == ColType::Bool && (v == 1.0 || v == 0.0) => Ok(Cell::Bool(v == 1.0)),
                                v if column.ty == ColType::Bool => Err(format!("`{}`: expected true or false, got {v}", column.name)),
                                ms if column.ty == ColType::Timestamptz => {
                                    micros_from_ms(ms).map(Cell::Timestamp).map_err(|e| format!("`{}`: {e}", column.name))
                                }
                                v if column.ty == ColType::Int8 => int_cell(v).map_err(|e| format!("`{}`: {e}", column.name)),
                                v => Ok(Cell::Float(v)),
                            }
                        }
                        ColType::Jsonb => {
                            let raw: &'a RawValue = json.next_element()?.ok_or_else(missing)?;
                            match raw.get() {
                                "null" => null_cell(column),
                                raw => json_cell(raw).map_err(|e| format!("`{}`: {e}", column.name)),
                            }
                        }
                    };
                    match cell {
                        Ok(cell) => self.cells.push(cell),
                        Err(e) => {
                            reason.get_or_insert(e);
                        }
                    }
                }
                reason.map_or(Ok(()), Err)
            };
            match outcome {
                Ok(()) => (self.accept)(index, &self.cells),
                Err(reason) => self.rejected.push(Rejected { index, reason }),
            }
        }
        if json.next_element::<IgnoredAny>()?.is_some() {
            return Err(serde::de::Error::custom("more values than the rows need"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::rows::check_rows;
    use crate::ErrorCode;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// A value a JS row may hold; `NonFinite` is a number JSON.stringify turns into null.
    #[derive(Clone, Debug)]
    enum V {
        Absent,
        Json(Value),
        NonFinite(f64),
    }

    /// Rows of `table` with values of every kind, wrong ones included, from `seed`.
    fn rows(table: Table, seed: u64, count: usize) -> Vec<Vec<(&'static str, V)>> {
        let mut state = seed | 1;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        (0..count)
            .map(|i| {
                let mut row: Vec<(&'static str, V)> = table
                    .columns()
                    .iter()
                    .map(|c| {
                        let kinds: &[V] = &[V::Absent, V::Json(Value::Null), V::Json(json!(7)), V::Json(json!({"k": [1, "x"]}))];
                        let typed = match c.ty {
                            ColType::Text => [json!(format!("agent-{i}")), json!("héllo 🙂 \"q\" \\"), json!("a\u{0}b")],
                            ColType::Uuid => {
                                [json!("0e2a4c1e-55aa-4c8b-9f34-5b8a4b2f7c11"), json!("nope"), json!("0E2A4C1E55AA4C8B9F345B8A4B2F7C11")]
                            }
                            ColType::Timestamptz => {
                                [json!(1_795_960_800_250i64 + i as i64), json!(1e20), json!("2026-11-29T15:00:00.250+01:00")]
                            }
                            ColType::Float8 => [json!(1.5), json!(-0.0), json!("x")],
                            ColType::Int8 => [json!(-1 - i as i64), json!(2.5), json!(9_007_199_254_740_992u64)],
                            ColType::Bool => [json!(true), json!(false), json!(1)],
                            ColType::Jsonb => [json!({"text": "m", "tags": ["a"]}), json!("\u{0}"), json!([1, {"b": null}])],
                        };
                        let value = match next(9) {
                            0 => kinds[next(4) as usize].clone(),
                            1 => V::NonFinite([f64::NAN, f64::INFINITY, f64::NEG_INFINITY][next(3) as usize]),
                            _ => V::Json(typed[next(3) as usize].clone()),
                        };
                        (c.name, value)
                    })
                    .collect();
                if next(12) == 0 {
                    row.push(("mood", V::Json(json!(1))));
                }
                row
            })
            .collect()
    }

    /// The keyed form, as JSON.stringify writes the row objects.
    fn keyed_json(rows: &[Vec<(&str, V)>]) -> String {
        let objects: Vec<Value> = rows
            .iter()
            .map(|row| {
                let fields = row.iter().filter_map(|(k, v)| match v {
                    V::Absent => None,
                    V::NonFinite(_) => Some((k.to_string(), Value::Null)),
                    V::Json(v) => Some((k.to_string(), v.clone())),
                });
                Value::Object(fields.collect())
            })
            .collect();
        serde_json::to_string(&objects).unwrap()
    }

    /// Keyed flags, the text values (null as empty), the same with nulls, numbers, the JSON.
    type ColumnForm = (Vec<bool>, Vec<String>, Vec<Option<String>>, Vec<f64>, String);

    /// The column form, as `src/sink/rows.ts` builds it: rows whose values all have the expected
    /// JS types go by column, the others keyed.
    fn column_form(table: Table, rows: &[Vec<(&'static str, V)>]) -> ColumnForm {
        let (mut keyed, mut texts, mut numbers, mut json) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let fits = |ty: ColType, v: &V| match (ty, v) {
            (_, V::Absent) | (_, V::Json(Value::Null)) | (ColType::Jsonb, _) => true,
            (ColType::Timestamptz | ColType::Float8 | ColType::Int8 | ColType::Bool, V::NonFinite(_)) => true,
            (ColType::Bool, V::Json(v)) => v.is_boolean(),
            (ColType::Text | ColType::Uuid, V::Json(v)) => v.is_string(),
            (ColType::Timestamptz | ColType::Float8 | ColType::Int8, V::Json(v)) => v.is_number(),
            _ => false,
        };
        for (i, row) in rows.iter().enumerate() {
            let known = row.len() == table.columns().len();
            if !known || !table.columns().iter().zip(row).all(|(c, (_, v))| fits(c.ty, v)) {
                keyed.push(true);
                json.push(serde_json::from_str::<Value>(&keyed_json(&rows[i..=i])).unwrap()[0].clone());
                continue;
            }
            keyed.push(false);
            for (c, (_, v)) in table.columns().iter().zip(row) {
                match (c.ty, v) {
                    (ColType::Text | ColType::Uuid, V::Json(Value::String(s))) => texts.push(Some(s.clone())),
                    (ColType::Text | ColType::Uuid, _) => texts.push(None),
                    (ColType::Timestamptz | ColType::Float8 | ColType::Int8, V::Json(v)) if v.is_number() => {
                        numbers.push(v.as_f64().unwrap())
                    }
                    (ColType::Bool, V::Json(Value::Bool(b))) => numbers.push(if *b { 1.0 } else { 0.0 }),
                    (ColType::Timestamptz | ColType::Float8 | ColType::Int8 | ColType::Bool, V::NonFinite(v)) => numbers.push(*v),
                    (ColType::Timestamptz | ColType::Float8 | ColType::Int8 | ColType::Bool, _) => numbers.push(f64::NAN),
                    (ColType::Jsonb, V::Json(v)) => json.push(v.clone()),
                    (ColType::Jsonb, _) => json.push(Value::Null),
                }
            }
        }
        let strings: Vec<String> = texts.iter().map(|t| t.clone().unwrap_or_default()).collect();
        (keyed, strings, texts, numbers, serde_json::to_string(&json).unwrap())
    }

    type Outcome<'a> = (Vec<(usize, Vec<Cell<'a>>)>, Vec<Rejected>);

    fn by_columns<'a>(table: Table, keyed: &'a [bool], pieces: &'a [Piece<'a>], numbers: &'a [f64], json: &'a str) -> Result<Outcome<'a>> {
        let mut accepted = Vec::new();
        let rows = Columns { keyed, pieces, numbers, json };
        let rejected = check_columns(table, &rows, |i, cells| accepted.push((i, cells.to_vec())))?;
        Ok((accepted, rejected))
    }

    fn agree(table: Table, seed: u64) {
        let rows = rows(table, seed, 12);
        let keyed_text = keyed_json(&rows);
        let mut accepted = Vec::new();
        let rejected = check_rows(table, &keyed_text, |i, cells| accepted.push((i, cells.to_vec()))).unwrap();
        let (keyed, strings, texts, numbers, json) = column_form(table, &rows);
        let pieces: Vec<Piece> = texts.iter().zip(&strings).map(|(t, s)| if t.is_some() { Piece::Text(s) } else { Piece::Null }).collect();
        let columns = by_columns(table, &keyed, &pieces, &numbers, &json).unwrap();
        assert_eq!(columns, (accepted, rejected), "seed {seed}: {keyed_text}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

        /// Whatever the values, a call in column form is checked exactly as the same rows keyed:
        /// the same cells for the same rows, the same reasons for the others.
        #[test]
        fn the_column_form_agrees_with_the_keyed_form(seed in any::<u64>()) {
            for table in crate::sink::TABLES {
                agree(table, seed);
            }
        }
    }

    #[test]
    fn generated_rows_cover_both_forms_and_both_outcomes() {
        let (mut column_rows, mut keyed_rows, mut good, mut bad) = (0, 0, 0, 0);
        for seed in 0..200 {
            let rows = rows(Table::Messages, seed, 12);
            let (keyed, ..) = column_form(Table::Messages, &rows);
            column_rows += keyed.iter().filter(|k| !**k).count();
            keyed_rows += keyed.iter().filter(|k| **k).count();
            let mut accepted = 0;
            let rejected = check_rows(Table::Messages, &keyed_json(&rows), |_, _| accepted += 1).unwrap();
            good += accepted;
            bad += rejected.len();
        }
        assert!(column_rows > 100 && keyed_rows > 100 && good > 20 && bad > 100, "{column_rows} {keyed_rows} {good} {bad}");
    }

    #[test]
    fn a_lone_surrogate_rejects_its_row_only() {
        let pieces = [Piece::Text("e"), Piece::LoneSurrogate, Piece::Text("e"), Piece::Text("b")];
        let numbers = [1.0, f64::NAN, 2.0, 7.0];
        let (accepted, rejected) = by_columns(Table::States, &[false, false], &pieces, &numbers, "[{},{}]").unwrap();
        let cells = vec![Cell::Text("e".into()), Cell::Text("b".into()), Cell::Timestamp(2000), Cell::Json("{}".into()), Cell::Int(7)];
        assert_eq!(accepted, [(1, cells)]);
        assert_eq!(rejected, [Rejected { index: 0, reason: "`agent_id`: invalid text: lone UTF-16 surrogates cannot be stored".into() }]);
    }

    #[test]
    fn an_int8_value_must_be_an_integer_a_js_number_holds_exactly() {
        let pieces = [Piece::Text("e"), Piece::Text("a")].repeat(5);
        let ticks = [-1.0, 2.5, 9_007_199_254_740_991.0, -9_007_199_254_740_992.0, f64::INFINITY];
        let numbers: Vec<f64> = ticks.iter().flat_map(|&tick| [1.0, tick]).collect();
        let (accepted, rejected) = by_columns(Table::States, &[false; 5], &pieces, &numbers, "[{},{},{},{},{}]").unwrap();
        let ticks: Vec<_> = accepted.iter().map(|(i, cells)| (*i, cells[4].clone())).collect();
        assert_eq!(ticks, [(0, Cell::Int(-1)), (2, Cell::Int(9_007_199_254_740_991)), (4, Cell::Null)]);
        let reasons: Vec<_> = rejected.iter().map(|r| (r.index, r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (1, "`tick`: expected an integer, got 2.5"),
                (3, "`tick`: -9007199254740992 is outside the integers a JS number holds exactly (at most 2^53 - 1 in magnitude)"),
            ]
        );
    }

    #[test]
    fn values_that_do_not_add_up_are_an_error_not_a_panic() {
        let two = [Piece::Text("e"), Piece::Text("a")];
        let (ts, tick) = (1.0, f64::NAN);
        for (keyed, pieces, numbers, json) in [
            (&[false][..], &two[..1], &[ts, tick][..], "[{}]"),
            (&[false], &two[..], &[ts][..], "[{}]"),
            (&[false], &two[..], &[ts, tick], "[]"),
            (&[false], &two[..], &[ts, tick], "[{},{}]"),
            (&[true], &[][..], &[][..], "[]"),
            (&[false], &two[..], &[ts, tick], "[{}"),
        ] {
            let err = by_columns(Table::States, keyed, pieces, numbers, json).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArg, "{err}");
        }
    }
}
