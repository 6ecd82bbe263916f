//! Flow control across the broker: a receiver that falls behind slows its senders.
//!
//! A broker acknowledges a QoS 1 publish as soon as it has stored it, whatever the subscriber's
//! pace, and queues the rest for the subscriber: Mosquitto's defaults then drop past 1,000 queued
//! messages per client (`max_queued_messages`). So the sender's in-flight window alone does not
//! bound what waits for a slow receiver.
//!
//! Credits close the loop. Every receiving bus (with credits on) counts the QoS 1/2 messages it
//! has read from each sending bus instance (`src` of the envelope) and reports the running count,
//! at most once a millisecond, as a QoS 0 message on `exps/<exp>/credit/<src>`: payload
//! `"<receiver src> <count>"`. The sender keeps the sum of the counts over its receivers and holds
//! a QoS 1/2 message while it has `credit_window` or more sent that no receiver has reported
//! (and acknowledged by the broker as having no subscriber, under MQTT 5).
//!
//! The sum bounds the backlog of each receiver, as long as each message has one receiver. Fan-out
//! to several receivers over-counts (a weaker bound, never a stall). Messages nobody reads under
//! 3.1.1 (an agent without a subscriber, a receiver that went away) are never reported: a sender
//! held that gets no new credit for `STALL_RELEASE` lets the backlog go and counts it in
//! `credit_released`. A broker that then drops messages shows up as gaps, never silently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use foldhash::HashMap;
use tokio::sync::Notify;

use super::topic::validate_id;

/// How long a held sender waits for new credit before it presumes its backlog is read by no one.
pub const STALL_RELEASE: Duration = Duration::from_secs(1);
/// How long a sender that never had a report waits for one: no receiver may speak credit at all
/// (foreign clients, or none), and then it stops holding until a report comes.
pub const FIRST_REPORT_WAIT: Duration = Duration::from_millis(200);
/// The least time between two reports of one receiver (reports go out at most this often).
pub const REPORT_GAP: Duration = Duration::from_millis(1);
/// Receivers a sender keeps counts for: reports from more (a foreign client inventing ids) are
/// ignored rather than let grow without end.
const MAX_RECEIVERS: usize = 10_000;

pub fn credit_topic(exp: &str, src: &str) -> String {
    format!("exps/{exp}/credit/{src}")
}

/// The sender's side: admits QoS 1/2 messages while the unreported backlog is under the window.
pub struct CreditGate {
    window: u64,
    state: Mutex<GateState>,
    progress: Notify,
    released: AtomicU64,
}

#[derive(Default)]
struct GateState {
    sent: u64,
    /// The latest count of each receiver that reported, and their sum.
    reported: HashMap<String, u64>,
    reported_sum: u64,
    /// Messages the broker said nobody subscribes to, plus backlogs let go after a stall.
    written_off: u64,
    last_progress: Option<Instant>,
    held_since: Option<Instant>,
    /// Held until `FIRST_REPORT_WAIT` without any report: nobody reports, so nothing is held.
    unanswered: bool,
}

impl GateState {
    fn backlog(&self) -> u64 {
        self.sent.saturating_sub(self.reported_sum + self.written_off)
    }
}

impl CreditGate {
    /// `window` 0: no gate (every message admitted at once).
    pub fn new(window: u64) -> Self {
        CreditGate { window, state: Mutex::default(), progress: Notify::new(), released: AtomicU64::new(0) }
    }

    /// Waits until one more QoS 1/2 message may go. Held from the first message on (a burst that
    /// outran the first report would already be too much), but not for long while no receiver
    /// has ever reported.
    pub async fn admit(&self) {
        if self.window == 0 {
            return;
        }
        loop {
            let progressed = self.progress.notified();
            let wait = {
                let mut s = self.state.lock().unwrap();
                if s.unanswered || s.backlog() < self.window {
                    s.held_since = None;
                    s.sent += 1;
                    return;
                }
                let now = Instant::now();
                let held_since = *s.held_since.get_or_insert(now);
                let since = s.last_progress.map_or(held_since, |p| p.max(held_since));
                let waited = now - since;
                let limit = if s.reported.is_empty() { FIRST_REPORT_WAIT } else { STALL_RELEASE };
                if waited >= limit {
                    let backlog = s.backlog();
                    s.written_off += backlog;
                    s.held_since = None;
                    s.unanswered = s.reported.is_empty();
                    s.sent += 1;
                    self.released.fetch_add(backlog, Ordering::Relaxed);
                    return;
                }
                limit - waited
            };
            let _ = tokio::time::timeout(wait, progressed).await;
        }
    }

    /// A receiver's report (its running count of our messages; an older one is ignored).
    pub fn report(&self, payload: &[u8]) {
        let Some((receiver, count)) = parse_report(payload) else { return };
        let mut s = self.state.lock().unwrap();
        if s.reported.len() >= MAX_RECEIVERS && !s.reported.contains_key(receiver) {
            return;
        }
        s.unanswered = false;
        // A known receiver is looked up without allocating its name (reports come ~1,000 a second).
        let gained = match s.reported.get_mut(receiver) {
            Some(last) => {
                let gained = count.saturating_sub(*last);
                *last = (*last).max(count);
                gained
            }
            None => {
                s.reported.insert(receiver.to_string(), count);
                count
            }
        };
        if gained > 0 {
            s.reported_sum += gained;
            s.last_progress = Some(Instant::now());
            drop(s);
            self.progress.notify_waiters();
        }
    }

    /// A message the broker acknowledged as having no subscriber: nobody will report it.
    pub fn unrouted(&self) {
        self.state.lock().unwrap().written_off += 1;
        self.progress.notify_waiters();
    }

    /// Whether credits are on (a window > 0): only then does this bus hold sends and report reads.
    pub fn is_on(&self) -> bool {
        self.window > 0
    }

    /// Messages let go after a stall without credit.
    pub fn released(&self) -> u64 {
        self.released.load(Ordering::Relaxed)
    }
}

fn parse_report(payload: &[u8]) -> Option<(&str, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (receiver, count) = text.split_once(' ')?;
    Some((receiver, count.parse().ok()?))
}

/// The receiver's side: counts per sending bus, and the reports still due.
#[derive(Default)]
pub struct CreditLedger {
    counts: Mutex<HashMap<String, Count>>,
    due: Notify,
}

#[derive(Default)]
struct Count {
    read: u64,
    reported: u64,
}

impl CreditLedger {
    /// One QoS 1/2 message read from `src`. A `src` that cannot be a topic level (a foreign
    /// client's envelope) gets no reports: publishing to it would fail.
    pub fn count(&self, src: &str) {
        let mut counts = self.counts.lock().unwrap();
        // One lookup per message for a known sender (this runs for every message read).
        let unreported = match counts.get_mut(src) {
            Some(c) => {
                c.read += 1;
                c.read - c.reported
            }
            None if validate_id("src", src).is_err() => return,
            None => {
                counts.insert(src.to_string(), Count { read: 1, reported: 0 });
                1
            }
        };
        if unreported == 1 {
            drop(counts);
            self.due.notify_one();
        }
    }

    /// Waits until some count is unreported.
    pub async fn due(&self) {
        self.due.notified().await
    }

    /// The reports to send now, `(sender src, "<receiver> <count>")`, marked as sent.
    pub fn take_reports(&self, receiver: &str) -> Vec<(String, String)> {
        let mut counts = self.counts.lock().unwrap();
        counts
            .iter_mut()
            .filter(|(_, c)| c.read > c.reported)
            .map(|(src, c)| {
                c.reported = c.read;
                (src.clone(), format!("{receiver} {}", c.read))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
    }

    fn admitted_now(gate: &CreditGate) -> bool {
        block_on(async { tokio::time::timeout(Duration::from_millis(20), gate.admit()).await.is_ok() })
    }

    #[test]
    fn the_gate_holds_at_the_window_and_opens_with_reports() {
        let gate = CreditGate::new(3);
        for _ in 0..3 {
            assert!(admitted_now(&gate));
        }
        // Held from the start, before any report (a first burst could already overflow a queue).
        assert!(!admitted_now(&gate));
        gate.report(b"r1 1");
        // 3 sent, 1 reported: one more goes, then the backlog is 3 again.
        assert!(admitted_now(&gate));
        assert!(!admitted_now(&gate));
        gate.report(b"r2 2");
        // 3 reported in all, 4 sent: two more go.
        assert!(admitted_now(&gate));
        assert!(admitted_now(&gate));
        assert!(!admitted_now(&gate));
        // An older count changes nothing; a broker's "no subscriber" does.
        gate.report(b"r1 1");
        assert!(!admitted_now(&gate));
        gate.unrouted();
        assert!(admitted_now(&gate));
        assert_eq!(gate.released(), 0);
        // Malformed reports are ignored.
        gate.report(b"r1");
        gate.report(b"r1 x");
        gate.report(&[0xff, b' ', b'9']);
        assert!(!admitted_now(&gate));
    }

    #[test]
    fn a_sender_without_credit_for_the_stall_time_lets_its_backlog_go() {
        let gate = CreditGate::new(2);
        block_on(async {
            gate.admit().await;
            gate.admit().await;
            gate.report(b"r 1");
            gate.admit().await; // backlog 1 < 2
            let started = Instant::now();
            gate.admit().await; // backlog 2: held until the stall release
            assert!(started.elapsed() >= STALL_RELEASE, "released after {:?}", started.elapsed());
            assert_eq!(gate.released(), 2);
            gate.admit().await; // the backlog is written off: 1 new
            assert!(tokio::time::timeout(Duration::from_millis(20), gate.admit()).await.is_err());
        });
    }

    #[test]
    fn a_sender_nobody_reports_to_stops_holding_until_a_report_comes() {
        let gate = CreditGate::new(2);
        block_on(async {
            gate.admit().await;
            gate.admit().await;
            let started = Instant::now();
            gate.admit().await;
            let waited = started.elapsed();
            assert!(waited >= FIRST_REPORT_WAIT && waited < STALL_RELEASE, "released after {waited:?}");
            assert_eq!(gate.released(), 2);
        });
        for _ in 0..10 {
            assert!(admitted_now(&gate));
        }
        // 13 sent, 2 written off: a first report of 1 leaves a backlog of 10 >= 2.
        gate.report(b"r 1");
        assert!(!admitted_now(&gate));
    }

    #[test]
    fn the_ledger_reports_each_sender_once_per_change() {
        let ledger = CreditLedger::default();
        ledger.count("s1");
        ledger.count("s1");
        ledger.count("s2");
        let mut reports = ledger.take_reports("me");
        reports.sort();
        assert_eq!(reports, vec![("s1".into(), "me 2".into()), ("s2".into(), "me 1".into())]);
        assert!(ledger.take_reports("me").is_empty());
        ledger.count("s2");
        assert_eq!(ledger.take_reports("me"), vec![("s2".into(), "me 2".into())]);
        for bad in ["", "a/b", "a+", "#", "a\nb"] {
            ledger.count(bad);
        }
        assert!(ledger.take_reports("me").is_empty(), "no topic can be made of those");
    }
}
