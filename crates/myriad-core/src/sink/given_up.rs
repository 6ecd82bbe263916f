//! The batches the Postgres pipeline gave up on since the last report, grouped by table and reason.
//!
//! A failure that hits every batch (a table dropped under the sink, a constraint the rows break)
//! would otherwise be reported once per batch: 500 copies of one sentence, 76 KB, for a million
//! rows. Grouped, it reads as one line with the rows and batches it cost, and a report never names
//! more than [`LISTED`] distinct reasons however many batches failed.

use super::schema::Table;

/// Distinct (table, reason) groups named in a report; further ones are counted together.
const LISTED: usize = 5;

struct Group {
    table: Table,
    reason: String,
    batches: u64,
    rows: u64,
}

#[derive(Default)]
pub(super) struct GivenUp {
    /// In first-seen order.
    groups: Vec<Group>,
    other_batches: u64,
    other_rows: u64,
}

impl GivenUp {
    pub fn add(&mut self, table: Table, rows: usize, reason: String) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.table == table && g.reason == reason) {
            g.batches += 1;
            g.rows += rows as u64;
        } else if self.groups.len() < LISTED {
            self.groups.push(Group { table, reason, batches: 1, rows: rows as u64 });
        } else {
            self.other_batches += 1;
            self.other_rows += rows as u64;
        }
    }

    /// The report of everything added so far (`None` if nothing was), leaving the list empty.
    pub fn take_report(&mut self) -> Option<String> {
        let GivenUp { groups, other_batches, other_rows } = std::mem::take(self);
        if groups.is_empty() {
            return None;
        }
        let mut lines: Vec<String> =
            groups.iter().map(|g| format!("{} rows of {} ({}): {}", g.rows, g.table.name(), batches(g.batches), g.reason)).collect();
        if other_batches > 0 {
            lines.push(format!("{other_rows} more rows ({}) for other reasons", batches(other_batches)));
        }
        Some(lines.join("; "))
    }
}

fn batches(n: u64) -> String {
    if n == 1 {
        "1 batch".into()
    } else {
        format!("{n} batches")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reason_for_many_batches_is_one_line_and_the_list_is_bounded() {
        let mut given_up = GivenUp::default();
        assert_eq!(given_up.take_report(), None);
        for _ in 0..500 {
            given_up.add(Table::Messages, 2000, "relation \"x\" does not exist".into());
        }
        given_up.add(Table::Metrics, 7, "permission denied".into());
        assert_eq!(
            given_up.take_report().unwrap(),
            "1000000 rows of messages (500 batches): relation \"x\" does not exist; 7 rows of metrics (1 batch): permission denied"
        );
        assert_eq!(given_up.take_report(), None, "a report empties the list");

        for i in 0..(LISTED + 3) {
            given_up.add(Table::States, 10, format!("reason {i}"));
        }
        let report = given_up.take_report().unwrap();
        assert!(report.contains("reason 4") && !report.contains("reason 5"), "{report}");
        assert!(report.ends_with("30 more rows (3 batches) for other reasons"), "{report}");
    }
}
