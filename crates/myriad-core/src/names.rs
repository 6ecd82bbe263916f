//! `Names`: the ids of a dense store (index rows, registry agents), each kept once, and the map
//! from an id to its slot.
//!
//! A `Vec<String>` of ids beside a `HashMap<String, u32>` keeps every id twice, each in its own
//! allocation (32 bytes of heap for an id of up to 24 bytes with glibc), plus 24 + 24 + 4 bytes of
//! strings and slot per entry, in buckets of which up to half are empty: ~170 bytes for an id of
//! 8. Here the id's bytes sit once in a shared arena, a slot costs an 8-byte span, and the map is a
//! table of 4-byte slots (plus hashbrown's control byte) that compares through the arena: ~25
//! bytes for the same id.
//!
//! Slots are dense: removing one moves the last id into it ([`Names::swap_remove`]), as the store
//! beside it does with its rows. The arena leaves a removed id's bytes behind and compacts when
//! those are over half of it.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::chunked::Chunked;

/// Arena chunks of 64 KiB: an id never straddles two, so one may leave a tail unused (at most the
/// longest id, 1 KiB: under 2 %).
const ARENA_SHIFT: u32 = 16;
/// A span packs the id's length in its low 16 bits, its offset in the arena above.
const LEN_BITS: u32 = 16;
/// Compaction waits for at least this much garbage, so that small stores never bother.
const MIN_GARBAGE: usize = 1 << 16;

pub(crate) struct Names {
    bytes: Chunked<u8>,
    /// Per slot: `offset << LEN_BITS | len` of its id in `bytes`.
    spans: Chunked<u64>,
    slots: HashTable<u32>,
    hasher: RandomState,
    /// Bytes of `bytes` that belong to no id (removed ids, chunk tails).
    garbage: usize,
}

impl Default for Names {
    fn default() -> Self {
        Names::new()
    }
}

impl Names {
    pub fn new() -> Self {
        Names {
            bytes: Chunked::new(1, ARENA_SHIFT),
            // 8-byte spans, 64 Ki to a chunk (512 KiB).
            spans: Chunked::new(1, 16),
            slots: HashTable::new(),
            hasher: RandomState::default(),
            garbage: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Bytes allocated (arena, spans, table).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.heap_bytes() + self.spans.heap_bytes() + self.slots.allocation_size()
    }

    /// Makes room for `additional` more ids (their bytes excepted).
    pub fn reserve(&mut self, additional: usize) {
        self.spans.reserve(additional);
        let Names { bytes, spans, slots, hasher, .. } = self;
        slots.reserve(additional, |&s| hash(hasher, id_bytes(bytes, spans, s as usize)));
    }

    pub fn get(&self, slot: usize) -> &str {
        std::str::from_utf8(id_bytes(&self.bytes, &self.spans, slot)).expect("ids are stored from UTF-8 text")
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|s| self.get(s))
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        let id = id.as_bytes();
        self.slots.find(hash(&self.hasher, id), |&s| id_bytes(&self.bytes, &self.spans, s as usize) == id).map(|&s| s as usize)
    }

    /// Adds `id`, which must be absent (see [`Names::find`]), at slot `len()`, and returns it.
    pub fn push(&mut self, id: &str) -> usize {
        let slot = self.len();
        assert!(slot < u32::MAX as usize, "a store holds at most 2^32 - 1 ids");
        assert!(id.len() < 1 << LEN_BITS, "id of {} bytes", id.len());
        let (offset, pad) = self.bytes.push_unsplit(id.as_bytes());
        self.garbage += pad;
        self.spans.push(((offset as u64) << LEN_BITS) | id.len() as u64);
        let h = hash(&self.hasher, id.as_bytes());
        let Names { bytes, spans, slots, hasher, .. } = self;
        slots.insert_unique(h, slot as u32, |&s| hash(hasher, id_bytes(bytes, spans, s as usize)));
        slot
    }

    /// Removes the id of `slot`; the id of the last slot moves into it (unless it is the last).
    pub fn swap_remove(&mut self, slot: usize) {
        let last = self.len() - 1;
        let removed = id_bytes(&self.bytes, &self.spans, slot);
        let removed_len = removed.len();
        match self.slots.find_entry(hash(&self.hasher, removed), |&s| s as usize == slot) {
            Ok(entry) => drop(entry.remove()),
            Err(_) => unreachable!("every slot is in the table"),
        }
        if slot != last {
            let moved = hash(&self.hasher, id_bytes(&self.bytes, &self.spans, last));
            *self.slots.find_mut(moved, |&s| s as usize == last).expect("every slot is in the table") = slot as u32;
            *self.spans.get_mut(slot) = *self.spans.get(last);
        }
        self.spans.pop();
        self.garbage += removed_len;
        if self.len() == 0 {
            self.bytes.truncate(0);
            self.garbage = 0;
        } else if self.garbage >= MIN_GARBAGE && self.garbage > self.bytes.len() / 2 {
            self.compact();
        }
    }

    /// Rewrites the arena with only the ids in use, in slot order (the table holds slots, not
    /// offsets, so it stays as it is).
    fn compact(&mut self) {
        let mut bytes = Chunked::new(1, ARENA_SHIFT);
        let mut garbage = 0;
        for slot in 0..self.len() {
            let id = id_bytes(&self.bytes, &self.spans, slot);
            let (offset, pad) = bytes.push_unsplit(id);
            garbage += pad;
            *self.spans.get_mut(slot) = ((offset as u64) << LEN_BITS) | id.len() as u64;
        }
        self.bytes = bytes;
        self.garbage = garbage;
    }
}

fn hash(hasher: &RandomState, id: &[u8]) -> u64 {
    hasher.hash_one(id)
}

fn id_bytes<'a>(bytes: &'a Chunked<u8>, spans: &Chunked<u64>, slot: usize) -> &'a [u8] {
    let span = *spans.get(slot);
    bytes.bytes((span >> LEN_BITS) as usize, (span & ((1 << LEN_BITS) - 1)) as usize)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn ids_map_to_dense_slots_through_removals_and_compaction() {
        let mut names = Names::new();
        let mut model: Vec<String> = Vec::new();
        let mut state = 1u64;
        let mut rnd = |m: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m as u64) as usize
        };
        for step in 0..40_000 {
            if model.is_empty() || rnd(3) > 0 {
                // Ids of 1 to 300 bytes, some multi-byte characters.
                let id = format!("{step}-{}", "é".repeat(rnd(150)));
                if names.find(&id).is_none() {
                    assert_eq!(names.push(&id), model.len());
                    model.push(id);
                }
            } else {
                let slot = rnd(model.len());
                names.swap_remove(slot);
                model.swap_remove(slot);
            }
            if step % 4999 == 0 {
                let slots: HashMap<&str, usize> = model.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
                assert_eq!(names.len(), model.len());
                for (slot, id) in model.iter().enumerate() {
                    assert_eq!((names.get(slot), names.find(id)), (id.as_str(), Some(slots[id.as_str()])));
                }
                assert_eq!(names.find("absent"), None);
            }
        }
        assert!(names.garbage <= MIN_GARBAGE.max(names.bytes.len() / 2), "compaction keeps the arena at most half garbage");
        while !model.is_empty() {
            names.swap_remove(0);
            model.swap_remove(0);
        }
        assert_eq!((names.len(), names.bytes.len()), (0, 0));
    }
}
