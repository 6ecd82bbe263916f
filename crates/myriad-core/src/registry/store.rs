//! The registry's state, kept compact for populations of millions (issue 24: 1,000,000 agents in
//! one process within 2 GB, the index and the model included).
//!
//! - [`Agents`]: a dense store of 64-byte records (chunked, so growing never copies it), the ids
//!   kept once in [`Names`] with a table of 4-byte slots, and specialties interned ([`Texts`]):
//!   agents that share a specialty text share one copy of it.
//! - [`Fifo`]: the remembered msgIds (and requested tasks), 128-bit digests in a ring that fills
//!   up to its capacity and then overwrites its oldest entry, with a table of 4-byte positions:
//!   22 to 28 bytes per digest (the table's load factor is 7/16 to 7/8), where a `HashSet<u128>`
//!   beside a `VecDeque<u128>` took 35 to 71.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::ledger::Ledger;
use super::pml::Status;
use super::Agent;
use crate::chunked::Chunked;
use crate::names::Names;

/// What the registry keeps per agent besides its id and specialty text: 64 bytes.
pub(super) struct Record {
    pub ledger: Ledger,
    pub last_seen: f64,
    pub capacity: u32,
    pub load: u32,
    /// The specialty, in [`Texts`].
    specialty: u32,
    pub status: Status,
}

pub(super) struct Agents {
    names: Names,
    records: Chunked<Record>,
    texts: Texts,
}

impl Agents {
    pub fn new() -> Self {
        // 1 MiB chunks of records.
        Agents { names: Names::new(), records: Chunked::with_chunk_bytes(1, 1 << 20, 4), texts: Texts::default() }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        self.names.find(id)
    }

    pub fn record_mut(&mut self, slot: usize) -> &mut Record {
        self.records.get_mut(slot)
    }

    /// Adds an agent, which must be absent, and returns its slot.
    pub fn insert(&mut self, id: &str, specialty: &str, ledger: Ledger, last_seen: f64) -> usize {
        let specialty = self.texts.acquire(specialty);
        let slot = self.names.push(id);
        self.records.push(Record { ledger, last_seen, capacity: 1, load: 0, specialty, status: Status::Idle });
        slot
    }

    pub fn set_specialty(&mut self, slot: usize, specialty: &str) {
        // Acquire first: the same text is then never freed and copied again.
        let text = self.texts.acquire(specialty);
        let old = std::mem::replace(&mut self.records.get_mut(slot).specialty, text);
        self.texts.release(old);
    }

    /// Removes the agent of `slot`; the last agent moves into it.
    pub fn remove(&mut self, slot: usize) {
        self.names.swap_remove(slot);
        let record = self.records.swap_remove(slot);
        self.texts.release(record.specialty);
    }

    /// `(id, record)` of every agent, by slot.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Record)> + '_ {
        self.names.iter().zip(self.records.iter())
    }

    pub fn specialty(&self, record: &Record) -> &str {
        self.texts.get(record.specialty)
    }

    /// The agent of `slot`, as an owned [`Agent`].
    pub fn agent(&self, slot: usize) -> Agent {
        let r = self.records.get(slot);
        Agent {
            id: self.names.get(slot).to_string(),
            specialty: self.specialty(r).to_string(),
            capacity: r.capacity,
            load: r.load,
            status: r.status,
            last_seen: r.last_seen,
            ledger: r.ledger.clone(),
        }
    }

    /// Bytes allocated for the records (ledgers' own allocations included).
    pub fn record_bytes(&self) -> usize {
        self.records.heap_bytes() + self.records.iter().map(|r| r.ledger.heap_bytes()).sum::<usize>()
    }

    pub fn id_bytes(&self) -> usize {
        self.names.heap_bytes()
    }

    pub fn text_bytes(&self) -> usize {
        self.texts.heap_bytes()
    }
}

/// Specialty texts, each distinct one kept once and counted by the agents that hold it.
#[derive(Default)]
struct Texts {
    /// By text id; a freed entry has no references and an empty text, and its id is in `free`.
    entries: Vec<Text>,
    free: Vec<u32>,
    /// Text ids, by the text's hash.
    table: HashTable<u32>,
    hasher: RandomState,
}

struct Text {
    text: Box<str>,
    refs: u32,
}

impl Texts {
    fn acquire(&mut self, text: &str) -> u32 {
        let Texts { entries, free, table, hasher } = self;
        let h = hasher.hash_one(text);
        if let Some(&id) = table.find(h, |&id| &*entries[id as usize].text == text) {
            entries[id as usize].refs += 1;
            return id;
        }
        let entry = Text { text: text.into(), refs: 1 };
        let id = match free.pop() {
            Some(id) => {
                entries[id as usize] = entry;
                id
            }
            None => {
                assert!(entries.len() < u32::MAX as usize, "at most 2^32 - 1 distinct specialty texts");
                entries.push(entry);
                (entries.len() - 1) as u32
            }
        };
        table.insert_unique(h, id, |&id| hasher.hash_one(&*entries[id as usize].text));
        id
    }

    fn release(&mut self, id: u32) {
        let entry = &mut self.entries[id as usize];
        entry.refs -= 1;
        if entry.refs == 0 {
            let text = std::mem::take(&mut entry.text);
            match self.table.find_entry(self.hasher.hash_one(&*text), |&t| t == id) {
                Ok(found) => drop(found.remove()),
                Err(_) => unreachable!("a text in use is in the table"),
            }
            self.free.push(id);
        }
    }

    fn get(&self, id: u32) -> &str {
        &self.entries[id as usize].text
    }

    fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Text>()
            + self.entries.iter().map(|e| e.text.len()).sum::<usize>()
            + self.free.capacity() * 4
            + self.table.allocation_size()
    }
}

/// At most `capacity` 128-bit keys, each with a value, forgotten oldest first.
pub(super) struct Fifo<V> {
    capacity: usize,
    /// Entries in the order they came until the ring is full; after that, `next` is the oldest.
    ring: Chunked<(u128, V)>,
    /// Where the next new key goes once the ring is full.
    next: usize,
    /// Positions in `ring`, by the key's low 64 bits (keys are seeded digests: uniform).
    table: HashTable<u32>,
}

impl<V: Copy> Fifo<V> {
    /// `capacity` at most `u32::MAX` (more digests than that would take 64 GiB).
    pub fn new(capacity: usize) -> Self {
        Fifo { capacity: capacity.min(u32::MAX as usize), ring: Chunked::with_chunk_bytes(1, 1 << 20, 4), next: 0, table: HashTable::new() }
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    fn position(&self, key: u128) -> Option<usize> {
        self.table.find(key as u64, |&p| self.ring.get(p as usize).0 == key).map(|&p| p as usize)
    }

    pub fn get(&self, key: u128) -> Option<&V> {
        self.position(key).map(|p| &self.ring.get(p).1)
    }

    pub fn contains(&self, key: u128) -> bool {
        self.position(key).is_some()
    }

    /// Remembers `key` with `value`: a new key takes the oldest one's place once `capacity` are
    /// held (nothing is kept at capacity 0); a known key gets `value` and keeps its place.
    /// Whether the key was new.
    pub fn insert(&mut self, key: u128, value: V) -> bool {
        if let Some(p) = self.position(key) {
            self.ring.get_mut(p).1 = value;
            return false;
        }
        if self.capacity == 0 {
            return true;
        }
        let Fifo { ring, table, .. } = self;
        let position = if ring.len() < self.capacity {
            ring.push((key, value));
            ring.len() - 1
        } else {
            let p = self.next;
            let oldest = ring.get(p).0;
            match table.find_entry(oldest as u64, |&q| q as usize == p) {
                Ok(found) => drop(found.remove()),
                Err(_) => unreachable!("every entry of the ring is in the table"),
            }
            *ring.get_mut(p) = (key, value);
            self.next = (p + 1) % self.capacity;
            p
        };
        let rehash = |&p: &u32| ring.get(p as usize).0 as u64;
        table.insert_unique(key as u64, position as u32, rehash);
        true
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &(u128, V)> + '_ {
        let split = if self.ring.len() < self.capacity { 0 } else { self.next };
        (split..self.ring.len()).chain(0..split).map(|p| self.ring.get(p))
    }

    pub fn heap_bytes(&self) -> usize {
        self.ring.heap_bytes() + self.table.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};

    use super::*;

    /// The ring against the `HashMap` + `VecDeque` pair it replaces, through wrap-arounds.
    #[test]
    fn the_fifo_forgets_what_a_queue_beside_a_map_forgets() {
        for capacity in [0, 1, 2, 7, 100] {
            let mut fifo: Fifo<u32> = Fifo::new(capacity);
            let (mut map, mut order) = (HashMap::new(), VecDeque::new());
            let mut state = 11u64;
            for step in 0..2000u32 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Keys from a small range, so that known keys come back often.
                let key = ((state % 150) as u128) << 64 | (state % 150) as u128;
                let new = !map.contains_key(&key);
                if capacity > 0 {
                    if new && order.len() == capacity {
                        map.remove(&order.pop_front().unwrap());
                    }
                    if new {
                        order.push_back(key);
                    }
                    map.insert(key, step);
                }
                assert_eq!(fifo.insert(key, step), new);
                assert_eq!(fifo.len(), order.len());
                assert_eq!(fifo.get(key), map.get(&key));
                if step % 101 == 0 {
                    assert!(fifo.iter().map(|&(k, _)| k).eq(order.iter().copied()));
                    assert!(fifo.iter().all(|(k, v)| map[k] == *v));
                }
            }
        }
    }

    #[test]
    fn texts_are_shared_and_freed_with_their_last_agent() {
        let mut agents = Agents::new();
        let a = agents.insert("a", "chef", Ledger::new(5), 0.0);
        let b = agents.insert("b", "chef", Ledger::new(5), 0.0);
        assert_eq!(agents.texts.entries.len(), 1);
        agents.set_specialty(a, "pilot");
        agents.set_specialty(b, "pilot");
        assert_eq!(agents.texts.free, vec![0], "no agent holds 'chef' any more");
        agents.insert("c", "baker", Ledger::new(5), 0.0);
        assert_eq!((agents.texts.entries.len(), agents.texts.free.len()), (2, 0), "'baker' took the freed entry");
        agents.remove(a);
        assert_eq!(agents.find("b"), Some(1));
        assert_eq!(agents.find("c"), Some(0));
        assert_eq!((agents.agent(0).specialty.as_str(), agents.agent(1).specialty.as_str()), ("baker", "pilot"));
        assert_eq!(std::mem::size_of::<Record>(), 64);
    }
}
