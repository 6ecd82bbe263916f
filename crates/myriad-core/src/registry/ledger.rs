//! The trust ledger of one agent: a sliding window of its recent outcomes and a response-time EMA.
//!
//! Trust is the mean of a Beta posterior over the window: (successes + 1) / (outcomes + 2), i.e. a
//! uniform Beta(1, 1) prior. Why this and not an EMA of outcomes: it is 0.5 for an agent nobody has
//! judged yet, moves a lot on the first few outcomes and little once the window is full (it knows
//! how much evidence it has), stays in (0, 1), and the window makes it forget old behaviour after
//! `window` outcomes, so an agent that degrades loses trust at a predictable rate.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Weight of the newest response time in the EMA: about the last ten observations matter.
pub const RESPONSE_EMA_ALPHA: f64 = 0.2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    window: usize,
    outcomes: VecDeque<bool>,
    successes: usize,
    /// Milliseconds; `None` until the first timed outcome.
    response_ms_ema: Option<f64>,
    total_outcomes: u64,
}

impl Ledger {
    pub fn new(window: usize) -> Self {
        Ledger { window: window.max(1), outcomes: VecDeque::new(), successes: 0, response_ms_ema: None, total_outcomes: 0 }
    }

    pub fn record(&mut self, success: bool, response_ms: Option<f64>) {
        if self.outcomes.len() == self.window && self.outcomes.pop_front() == Some(true) {
            self.successes -= 1;
        }
        self.outcomes.push_back(success);
        self.successes += success as usize;
        self.total_outcomes += 1;
        if let Some(ms) = response_ms.filter(|v| v.is_finite() && *v >= 0.0) {
            self.response_ms_ema = Some(match self.response_ms_ema {
                None => ms,
                Some(prev) => prev + RESPONSE_EMA_ALPHA * (ms - prev),
            });
        }
    }

    /// Posterior mean of the success probability over the window, Beta(1, 1) prior.
    pub fn trust(&self) -> f64 {
        (self.successes as f64 + 1.0) / (self.outcomes.len() as f64 + 2.0)
    }

    pub fn response_ms(&self) -> Option<f64> {
        self.response_ms_ema
    }

    pub fn window_len(&self) -> usize {
        self.outcomes.len()
    }

    pub fn total_outcomes(&self) -> u64 {
        self.total_outcomes
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
}
