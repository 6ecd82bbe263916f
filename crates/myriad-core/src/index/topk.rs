//! Keeping the k best (score, slot) pairs of a scan.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One candidate. "Greater" means "worse", so a max-heap of them keeps the worst on top, ready to
/// be evicted. Ties on score go to the lower slot, which makes results deterministic.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub score: f32,
    pub slot: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Scores are finite (inputs are validated), so total_cmp orders them as numbers.
        other.score.total_cmp(&self.score).then(self.slot.cmp(&other.slot))
    }
}

pub struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
    /// The worst kept score once the heap is full (ties still go through the heap).
    floor: f32,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1), floor: f32::NEG_INFINITY }
    }

    #[inline]
    pub fn push(&mut self, score: f32, slot: u32) {
        // Fast reject: once full, almost every row scores below the current worst.
        if self.heap.len() == self.k && score < self.floor {
            return;
        }
        let c = Candidate { score, slot };
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if c < *worst {
                *worst = c;
            }
        }
        if self.heap.len() == self.k {
            self.floor = self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.score);
        }
    }

    /// The worst kept score once k are kept; minus infinity before.
    pub fn threshold(&self) -> f32 {
        self.floor
    }

    pub fn merge(mut self, other: TopK) -> TopK {
        for c in other.heap {
            self.push(c.score, c.slot);
        }
        self
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_best_in_order_with_ties_to_lower_slots() {
        let mut t = TopK::new(3);
        for (slot, score) in [0.1f32, 0.9, 0.5, 0.9, 0.3, 0.7].iter().enumerate() {
            t.push(*score, slot as u32);
        }
        let got: Vec<(f32, u32)> = t.into_sorted().iter().map(|c| (c.score, c.slot)).collect();
        assert_eq!(got, vec![(0.9, 1), (0.9, 3), (0.7, 5)]);
    }

    #[test]
    fn merge_equals_one_pass() {
        let scores: Vec<f32> = (0..100).map(|i| ((i * 7919) % 113) as f32).collect();
        let mut whole = TopK::new(5);
        let (mut a, mut b) = (TopK::new(5), TopK::new(5));
        for (i, &s) in scores.iter().enumerate() {
            whole.push(s, i as u32);
            if i % 2 == 0 {
                a.push(s, i as u32)
            } else {
                b.push(s, i as u32)
            }
        }
        let merged: Vec<u32> = a.merge(b).into_sorted().iter().map(|c| c.slot).collect();
        let one: Vec<u32> = whole.into_sorted().iter().map(|c| c.slot).collect();
        assert_eq!(merged, one);
    }
}
