//! The trust ledger of one agent: a sliding window of its recent outcomes and a response-time EMA.
//!
//! Trust is the mean of a Beta posterior over the window: (successes + 1) / (outcomes + 2), i.e. a
//! uniform Beta(1, 1) prior. Why this and not an EMA of outcomes: it is 0.5 for an agent nobody has
//! judged yet, moves a lot on the first few outcomes and little once the window is full (it knows
//! how much evidence it has), stays in (0, 1), and the window makes it forget old behaviour after
//! `window` outcomes, so an agent that degrades loses trust at a predictable rate.

use serde::{Deserialize, Serialize};

/// Weight of the newest response time in the EMA: about the last ten observations matter.
pub const RESPONSE_EMA_ALPHA: f64 = 0.2;

/// The window is a shift register of outcome bits, newest in bit 0 of `bits`: a ledger is 40 bytes
/// and allocates nothing for a window of up to 64 (with a `VecDeque<bool>` it was 72 bytes and,
/// once outcomes came, an allocation of up to 64 more). Windows beyond 64 keep their older bits in
/// `spill`, allocated once the window holds 64 outcomes. Successes are the bits set, counted.
#[derive(Clone)]
pub struct Ledger {
    window: u32,
    /// Outcomes in the window.
    len: u32,
    total_outcomes: u64,
    /// Milliseconds; NaN until the first timed outcome (samples are finite and >= 0).
    response_ms_ema: f64,
    /// The newest 64 outcomes, 1 = success, newest in bit 0.
    bits: u64,
    /// Windows beyond 64: the older outcomes (a thin pointer, so that it costs 8 bytes unused).
    spill: Option<Box<Spill>>,
}

/// The outcomes of a window beyond its newest 64, the next older in bit 0 of word 0.
#[derive(Clone, PartialEq, Eq)]
struct Spill(Vec<u64>);

impl Ledger {
    /// A window of `window` outcomes (at least 1, at most `u32::MAX`).
    pub fn new(window: usize) -> Self {
        Ledger {
            window: window.clamp(1, u32::MAX as usize) as u32,
            len: 0,
            total_outcomes: 0,
            response_ms_ema: f64::NAN,
            bits: 0,
            spill: None,
        }
    }

    pub fn record(&mut self, success: bool, response_ms: Option<f64>) {
        self.push_outcome(success);
        self.total_outcomes += 1;
        if let Some(ms) = response_ms.filter(|v| v.is_finite() && *v >= 0.0) {
            self.response_ms_ema = match self.response_ms() {
                None => ms,
                Some(prev) => prev + RESPONSE_EMA_ALPHA * (ms - prev),
            };
        }
    }

    /// Shifts `success` into the window; the oldest outcome falls out of a full one.
    fn push_outcome(&mut self, success: bool) {
        let window = self.window as usize;
        if window <= 64 {
            let mask = if window == 64 { u64::MAX } else { (1 << window) - 1 };
            self.bits = ((self.bits << 1) | success as u64) & mask;
        } else {
            let mut carry = self.bits >> 63;
            self.bits = (self.bits << 1) | success as u64;
            if self.len >= 64 {
                let spill = &mut self.spill.get_or_insert_with(|| Box::new(Spill(vec![0; (window - 64).div_ceil(64)]))).0;
                for word in spill.iter_mut() {
                    let out = *word >> 63;
                    *word = (*word << 1) | carry;
                    carry = out;
                }
                let top = (window - 64) % 64;
                if top != 0 {
                    *spill.last_mut().expect("a window beyond 64 spills") &= (1 << top) - 1;
                }
            }
        }
        self.len = (self.len + 1).min(self.window);
    }

    /// Successes in the window.
    fn successes(&self) -> u32 {
        self.bits.count_ones() + self.spill.iter().flat_map(|s| s.0.iter()).map(|w| w.count_ones()).sum::<u32>()
    }

    /// Outcome `age` of the window (0 = the newest).
    fn outcome(&self, age: usize) -> bool {
        if age < 64 {
            self.bits >> age & 1 == 1
        } else {
            let old = age - 64;
            self.spill.as_ref().is_some_and(|s| s.0[old / 64] >> (old % 64) & 1 == 1)
        }
    }

    /// Posterior mean of the success probability over the window, Beta(1, 1) prior.
    pub fn trust(&self) -> f64 {
        (self.successes() as f64 + 1.0) / (self.len as f64 + 2.0)
    }

    pub fn response_ms(&self) -> Option<f64> {
        (!self.response_ms_ema.is_nan()).then_some(self.response_ms_ema)
    }

    pub fn window_len(&self) -> usize {
        self.len as usize
    }

    pub fn total_outcomes(&self) -> u64 {
        self.total_outcomes
    }

    /// Bytes allocated beyond the ledger itself (a window of over 64 outcomes, once it has 64).
    pub fn heap_bytes(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| std::mem::size_of::<Spill>() + s.0.capacity() * 8)
    }
}

impl PartialEq for Ledger {
    fn eq(&self, other: &Self) -> bool {
        // The spill is allocated at the same point of any history, so equal windows compare equal.
        (self.window, self.len, self.total_outcomes, self.bits, &self.spill)
            == (other.window, other.len, other.total_outcomes, other.bits, &other.spill)
            && self.response_ms() == other.response_ms()
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("window", &self.window)
            .field("outcomes", &LedgerJson::from(self).outcomes)
            .field("successes", &self.successes())
            .field("response_ms_ema", &self.response_ms())
            .field("total_outcomes", &self.total_outcomes)
            .finish()
    }
}

/// A ledger as snapshots have always written it (when the window was a `VecDeque<bool>`): the
/// outcomes oldest first and the successes among them.
#[derive(Serialize, Deserialize)]
struct LedgerJson {
    window: usize,
    outcomes: Vec<bool>,
    successes: usize,
    response_ms_ema: Option<f64>,
    total_outcomes: u64,
}

impl From<&Ledger> for LedgerJson {
    fn from(l: &Ledger) -> Self {
        LedgerJson {
            window: l.window as usize,
            outcomes: (0..l.len as usize).rev().map(|age| l.outcome(age)).collect(),
            successes: l.successes() as usize,
            response_ms_ema: l.response_ms(),
            total_outcomes: l.total_outcomes,
        }
    }
}

impl TryFrom<LedgerJson> for Ledger {
    type Error = String;

    fn try_from(j: LedgerJson) -> Result<Self, String> {
        if j.window == 0 || j.window > u32::MAX as usize || j.outcomes.len() > j.window {
            return Err(format!("a ledger of {} outcomes in a window of {}", j.outcomes.len(), j.window));
        }
        if j.outcomes.iter().filter(|&&o| o).count() != j.successes {
            return Err(format!("a ledger counts {} successes among outcomes that hold another number", j.successes));
        }
        if j.response_ms_ema.is_some_and(|v| !v.is_finite() || v < 0.0) || (j.outcomes.len() as u64) > j.total_outcomes {
            return Err("a ledger with a bad response time or total".into());
        }
        let mut ledger = Ledger::new(j.window);
        for &o in &j.outcomes {
            ledger.push_outcome(o);
        }
        ledger.total_outcomes = j.total_outcomes;
        ledger.response_ms_ema = j.response_ms_ema.unwrap_or(f64::NAN);
        Ok(ledger)
    }
}

impl Serialize for Ledger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        LedgerJson::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Ledger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ledger::try_from(LedgerJson::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_starts_neutral_and_follows_the_window() {
        let mut l = Ledger::new(4);
        assert_eq!(l.trust(), 0.5);
        for _ in 0..4 {
            l.record(true, None);
        }
        assert!((l.trust() - 5.0 / 6.0).abs() < 1e-12);
        // Four failures push every success out of the window.
        for _ in 0..4 {
            l.record(false, None);
        }
        assert!((l.trust() - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!((l.window_len(), l.total_outcomes()), (4, 8));
    }

    #[test]
    fn response_time_is_an_ema_that_ignores_bad_samples() {
        let mut l = Ledger::new(10);
        l.record(true, Some(100.0));
        l.record(true, Some(200.0));
        assert!((l.response_ms().unwrap() - 120.0).abs() < 1e-9);
        l.record(true, Some(f64::NAN));
        l.record(true, Some(-5.0));
        assert!((l.response_ms().unwrap() - 120.0).abs() < 1e-9);
    }

    /// The bit window against the `VecDeque<bool>` it replaces, for windows on both sides of 64
    /// and of a multiple of 64, through a snapshot round trip.
    #[test]
    fn the_bit_window_counts_what_a_queue_of_outcomes_counts() {
        let mut state = 3u64;
        for window in [1, 2, 50, 63, 64, 65, 100, 128, 129, 300] {
            let mut ledger = Ledger::new(window);
            let mut queue = std::collections::VecDeque::new();
            for step in 0..700 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let success = !state.is_multiple_of(3);
                ledger.record(success, None);
                if queue.len() == window {
                    queue.pop_front();
                }
                queue.push_back(success);
                let successes = queue.iter().filter(|&&o| o).count();
                assert_eq!(ledger.window_len(), queue.len());
                assert_eq!(ledger.trust(), (successes as f64 + 1.0) / (queue.len() as f64 + 2.0), "window {window} step {step}");
                if step % 97 == 0 || step < 3 {
                    let json = serde_json::to_value(&ledger).unwrap();
                    assert_eq!(json["outcomes"], serde_json::json!(queue.iter().collect::<Vec<_>>()));
                    assert_eq!(json["successes"], successes);
                    let back: Ledger = serde_json::from_value(json).unwrap();
                    assert_eq!(back, ledger);
                }
            }
            assert_eq!(ledger.heap_bytes() > 0, window > 64);
        }
        assert_eq!(std::mem::size_of::<Ledger>(), 40);
        assert_eq!(Ledger::new(50).heap_bytes(), 0);
    }

    #[test]
    fn snapshots_of_impossible_ledgers_are_refused() {
        let bad = [
            serde_json::json!({ "window": 2, "outcomes": [true, true, false], "successes": 2, "response_ms_ema": null, "total_outcomes": 3 }),
            serde_json::json!({ "window": 4, "outcomes": [true, false], "successes": 2, "response_ms_ema": null, "total_outcomes": 2 }),
            serde_json::json!({ "window": 0, "outcomes": [], "successes": 0, "response_ms_ema": null, "total_outcomes": 0 }),
        ];
        for json in bad {
            assert!(serde_json::from_value::<Ledger>(json).is_err());
        }
    }
}
