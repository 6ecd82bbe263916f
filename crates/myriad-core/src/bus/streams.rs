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
//! could go missing unseen. A sender therefore sends a stream an end mark (an envelope with an
//! empty `msgId` and no payload) carrying the stream's last `seq`, and a receiver behind that
//! reports the rest as a gap. Marks go out when the sender closes (every stream) and when a
//! stream has gone quiet (see [`SendCounters::quiet_marks`]): a stream that keeps busy needs none,
//! its next message reveals any gap. (Not on every drain: a sender that drains each tick would
//! double its traffic.)

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use xxhash_rust::xxh3::xxh3_64;

use super::envelope::Envelope;
use super::topic::Kind;

/// The streams of one sending bus, one per (destination, kind).
#[derive(Default)]
pub struct SendCounters {
    /// Position in `streams` by stream key.
    index: HashMap<u64, u32>,
    streams: Vec<SendStream>,
    /// Whether this bus sends end marks (not over the in-process router, which loses nothing):
    /// only then does a stream keep its destination, ~40 bytes for each of up to a million.
    end_marks: bool,
    /// Streams with messages after their last mark, each once (positions in `streams`).
    unmarked: Vec<u32>,
    /// Counts `quiet_marks` calls; each stream remembers the round of its last message.
    round: u64,
}

struct SendStream {
    to: String,
    kind: Kind,
    /// The last `seq` stamped.
    seq: u64,
    /// The `seq` the last mark carried.
    marked: u64,
    round: u64,
}

/// What an end mark names: `(destination, kind, last seq)`.
pub type EndMark = (String, Kind, u64);

impl SendCounters {
    pub fn new(end_marks: bool) -> Self {
        SendCounters { end_marks, ..Default::default() }
    }

    pub fn next(&mut self, to: &str, kind: Kind) -> u64 {
        let streams = &mut self.streams;
        let end_marks = self.end_marks;
        let at = *self.index.entry(stream_key("", to, kind)).or_insert_with(|| {
            let to = if end_marks { to.to_string() } else { String::new() };
            streams.push(SendStream { to, kind, seq: 0, marked: 0, round: 0 });
            (streams.len() - 1) as u32
        });
        let stream = &mut streams[at as usize];
        stream.seq += 1;
        stream.round = self.round;
        if end_marks && stream.seq == stream.marked + 1 {
            self.unmarked.push(at);
        }
        stream.seq
    }

    /// Every stream's mark, for a close (none without end marks).
    pub fn end_marks(&mut self) -> Vec<EndMark> {
        if !self.end_marks {
            return Vec::new();
        }
        self.unmarked.clear();
        self.streams
            .iter_mut()
            .map(|s| {
                s.marked = s.seq;
                (s.to.clone(), s.kind, s.seq)
            })
            .collect()
    }

    /// Marks for the streams that got messages after their last mark but none since the previous
    /// call: called every `end_mark_idle_ms`, a stream is marked once it has been quiet that long
    /// (up to twice that). The work is proportional to the streams written to, not to all of them.
    pub fn quiet_marks(&mut self) -> Vec<EndMark> {
        let (round, streams) = (self.round, &mut self.streams);
        let mut marks = Vec::new();
        self.unmarked.retain(|&at| {
            let s = &mut streams[at as usize];
            if s.round == round {
                return true; // written since the previous call: not quiet yet
            }
            s.marked = s.seq;
            marks.push((s.to.clone(), s.kind, s.seq));
            false
        });
        self.round += 1;
        marks
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
        let gap =
            Gap { agent: agent.to_string(), kind, from: env.from.clone(), src: env.src.clone(), expected: *last + 1, got: env.seq + 1 };
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
        assert_eq!(quiet.quiet_marks(), []);
    }

    #[test]
    fn quiet_marks_wait_a_full_round_and_mark_each_stream_once() {
        let mut s = SendCounters::new(true);
        s.next("b", Kind::AgentChat);
        s.next("c", Kind::AgentChat);
        assert_eq!(s.quiet_marks(), [], "written since the round began: not quiet yet");
        s.next("c", Kind::AgentChat);
        // b was quiet for a whole round; c was written again.
        assert_eq!(s.quiet_marks(), [("b".to_string(), Kind::AgentChat, 1)]);
        assert_eq!(s.quiet_marks(), [("c".to_string(), Kind::AgentChat, 2)]);
        assert_eq!(s.quiet_marks(), [], "nothing new: no mark again");
        s.next("b", Kind::AgentChat);
        s.next("b", Kind::AgentChat);
        assert_eq!(s.quiet_marks(), []);
        assert_eq!(s.quiet_marks(), [("b".to_string(), Kind::AgentChat, 3)]);
        // A close marks every stream, marked or not, and leaves nothing for a quiet round.
        s.next("c", Kind::AgentChat);
        let mut all = s.end_marks();
        all.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(all, [("b".to_string(), Kind::AgentChat, 3), ("c".to_string(), Kind::AgentChat, 3)]);
        s.quiet_marks();
        assert_eq!(s.quiet_marks(), []);
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
