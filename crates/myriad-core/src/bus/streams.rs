//! Exactly-once and in-order bookkeeping on both ends of the wire.
//!
//! Sending: every (destination agent, kind) is a stream of this bus instance (`src`), numbered
//! 1, 2, 3, ... MQTT keeps one client's messages on one topic in order, so the receiver can check.
//!
//! Receiving: a message whose `msgId` was seen within the last `window` messages is a duplicate
//! (QoS 1 redelivery after a reconnect, or a sender's retry) and is dropped, counted. A `seq` that
//! jumps ahead of its stream is a gap: reported once, counted, and the message is still delivered.
//! A `seq` behind its stream that was not seen before arrives late: delivered, counted as reordered.
//!
//! End marks: a jump shows only when a later message arrives, so the last messages of a stream
//! could go missing unseen. When a sender closes, it sends each of its streams an end mark (an
//! envelope with an empty `msgId` and no payload) carrying the stream's last `seq`; a receiver
//! behind that reports the rest as a gap. (Not on every drain: a sender that drains each tick
//! would double its traffic.)

use std::collections::VecDeque;

use foldhash::{HashMap, HashSet, HashMapExt, HashSetExt};
use xxhash_rust::xxh3::xxh3_64;

use super::envelope::Envelope;
use super::topic::Kind;

/// The streams of one sending bus, one per (destination, kind).
#[derive(Default)]
pub struct SendCounters {
    streams: HashMap<u64, SendStream>,
    /// Whether this bus sends end marks (not over the in-process router, which loses nothing):
    /// only then does a stream keep its destination, ~40 bytes for each of up to a million.
    end_marks: bool,
}

struct SendStream {
    to: String,
    kind: Kind,
    /// The last `seq` stamped.
    seq: u64,
}

impl SendCounters {
    pub fn new(end_marks: bool) -> Self {
        SendCounters { end_marks, ..Default::default() }
    }

    pub fn next(&mut self, to: &str, kind: Kind) -> u64 {
        let end_marks = self.end_marks;
        let stream = self
            .streams
            .entry(stream_key("", to, kind))
            .or_insert_with(|| SendStream { to: if end_marks { to.to_string() } else { String::new() }, kind, seq: 0 });
        stream.seq += 1;
        stream.seq
    }

    /// `(destination, kind, last seq)` of every stream, for its end mark (none without them).
    pub fn end_marks(&self) -> Vec<(String, Kind, u64)> {
        if !self.end_marks {
            return Vec::new();
        }
        self.streams.values().map(|s| (s.to.clone(), s.kind, s.seq)).collect()
    }
}

/// A jump in a stream's sequence: `missing` messages between `expected` and `got` never arrived (yet).
#[derive(Clone, Debug, PartialEq)]
pub struct Gap {
    pub agent: String,
    pub kind: Kind,
    pub from: String,
    pub src: String,
    pub expected: u64,
    pub got: u64,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Deliver,
    Duplicate,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReceiveCounts {
    pub duplicates: u64,
    pub gaps: u64,
    pub missing: u64,
    pub reordered: u64,
}

pub struct ReceiveState {
    window: usize,
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    last_seq: HashMap<u64, u64>,
    pub counts: ReceiveCounts,
}

impl ReceiveState {
    pub fn new(window: usize) -> Self {
        ReceiveState {
            window: window.max(1),
            seen: HashSet::with_capacity(window.min(1 << 20)),
            seen_order: VecDeque::with_capacity(window.min(1 << 20)),
            last_seq: HashMap::new(),
            counts: ReceiveCounts::default(),
        }
    }

    /// Judges one enveloped message addressed to `agent`; a gap it reveals is returned to report.
    pub fn accept(&mut self, env: &Envelope, agent: &str, kind: Kind) -> (Verdict, Option<Gap>) {
        let id = xxh3_64(env.msg_id.as_bytes()) ^ xxh3_64(env.src.as_bytes()).rotate_left(17);
        if !self.seen.insert(id) {
            self.counts.duplicates += 1;
            return (Verdict::Duplicate, None);
        }
        self.seen_order.push_back(id);
        if self.seen_order.len() > self.window {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        let last = self.last_seq.entry(stream_key(&env.src, agent, kind)).or_insert(0);
        let mut gap = None;
        if env.seq > *last + 1 {
            self.counts.gaps += 1;
            self.counts.missing += env.seq - *last - 1;
            gap = Some(Gap {
                agent: agent.to_string(),
                kind,
                from: env.from.clone(),
                src: env.src.clone(),
                expected: *last + 1,
                got: env.seq,
            });
        } else if env.seq <= *last {
            self.counts.reordered += 1;
            return (Verdict::Deliver, None);
        }
        *last = env.seq;
        (Verdict::Deliver, gap)
    }

    /// An end mark: its sender's last message on this stream so far was `env.seq`. Whatever came
    /// after the last one seen never arrived: a gap, with `got` one past the mark.
    pub fn end_of_stream(&mut self, env: &Envelope, agent: &str, kind: Kind) -> Option<Gap> {
        let last = self.last_seq.entry(stream_key(&env.src, agent, kind)).or_insert(0);
        if env.seq <= *last {
            return None;
        }
        self.counts.gaps += 1;
        self.counts.missing += env.seq - *last;
        let gap = Gap { agent: agent.to_string(), kind, from: env.from.clone(), src: env.src.clone(), expected: *last + 1, got: env.seq + 1 };
        *last = env.seq;
        Some(gap)
    }
}

fn stream_key(src: &str, agent: &str, kind: Kind) -> u64 {
    xxh3_64(src.as_bytes()).rotate_left(7) ^ xxh3_64(agent.as_bytes()) ^ (kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(msg_id: &str, seq: u64) -> Envelope {
        Envelope { msg_id: msg_id.into(), seq, from: "a".into(), src: "s1".into(), ts: 0 }
    }

    #[test]
    fn duplicates_are_dropped_and_gaps_reported_once() {
        let mut r = ReceiveState::new(100);
        assert_eq!(r.accept(&env("m1", 1), "b", Kind::AgentChat), (Verdict::Deliver, None));
        assert_eq!(r.accept(&env("m1", 1), "b", Kind::AgentChat).0, Verdict::Duplicate);
        let (v, gap) = r.accept(&env("m4", 4), "b", Kind::AgentChat);
        assert_eq!(v, Verdict::Deliver);
        let gap = gap.unwrap();
        assert_eq!((gap.expected, gap.got), (2, 4));
        // The late one is delivered, counted as reordered, not as a second gap.
        assert_eq!(r.accept(&env("m2", 2), "b", Kind::AgentChat), (Verdict::Deliver, None));
        assert_eq!(r.counts, ReceiveCounts { duplicates: 1, gaps: 1, missing: 2, reordered: 1 });
        // Streams are per (src, agent, kind): another kind starts at 1 without a gap.
        assert_eq!(r.accept(&env("m5", 1), "b", Kind::UserChat), (Verdict::Deliver, None));
    }

    #[test]
    fn the_window_bounds_memory() {
        let mut r = ReceiveState::new(2);
        for (i, id) in ["x", "y", "z"].iter().enumerate() {
            r.accept(&env(id, i as u64 + 1), "b", Kind::AgentChat);
        }
        assert_eq!(r.seen.len(), 2);
        // "x" fell out of the window: a replay of it is no longer recognised by msgId.
        assert_eq!(r.accept(&env("x", 1), "b", Kind::AgentChat).0, Verdict::Deliver);
    }

    #[test]
    fn send_counters_count_per_destination_and_kind() {
        let mut s = SendCounters::default();
        assert_eq!(s.next("b", Kind::AgentChat), 1);
        assert_eq!(s.next("b", Kind::AgentChat), 2);
        assert_eq!(s.next("c", Kind::AgentChat), 1);
        assert_eq!(s.next("b", Kind::UserSurvey), 1);
    }

    #[test]
    fn end_marks_name_every_stream_with_its_last_seq() {
        let mut s = SendCounters::new(true);
        s.next("b", Kind::AgentChat);
        s.next("c", Kind::AgentChat);
        s.next("b", Kind::AgentChat);
        let mut marks = s.end_marks();
        marks.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(marks, [("b".to_string(), Kind::AgentChat, 2), ("c".to_string(), Kind::AgentChat, 1)]);
        // A bus without end marks keeps no destinations.
        let mut quiet = SendCounters::new(false);
        quiet.next("b", Kind::AgentChat);
        assert_eq!(quiet.end_marks(), []);
    }

    #[test]
    fn an_end_mark_past_the_last_message_seen_is_a_gap_once() {
        let mut r = ReceiveState::new(100);
        r.accept(&env("m1", 1), "b", Kind::AgentChat);
        r.accept(&env("m2", 2), "b", Kind::AgentChat);
        // The sender says it sent 2: nothing missing.
        assert_eq!(r.end_of_stream(&env("", 2), "b", Kind::AgentChat), None);
        // It sent 5: 3, 4 and 5 never arrived.
        let gap = r.end_of_stream(&env("", 5), "b", Kind::AgentChat).unwrap();
        assert_eq!((gap.expected, gap.got), (3, 6));
        assert_eq!(r.end_of_stream(&env("", 5), "b", Kind::AgentChat), None, "a repeated mark reports nothing more");
        // A stream of which nothing arrived at all.
        let gap = r.end_of_stream(&env("", 3), "c", Kind::AgentChat).unwrap();
        assert_eq!((gap.expected, gap.got), (1, 4));
        assert_eq!(r.counts, ReceiveCounts { duplicates: 0, gaps: 2, missing: 6, reordered: 0 });
        // The next message after the mark is in order.
        assert_eq!(r.accept(&env("m6", 6), "b", Kind::AgentChat), (Verdict::Deliver, None));
    }
}
