//! The agent registry: who exists, what they do, how loaded and how trustworthy they are.
//! It is driven by PML messages ([`pml`]); each message is applied at most once (by `msgId`), and a
//! bad message is rejected on its own without touching the rest of a batch.

pub mod ledger;
pub mod pml;
mod pml_scan;
mod store;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use foldhash::fast::RandomState as FastHash;
use xxhash_rust::xxh3::xxh3_128_with_seed;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};
use ledger::Ledger;
use pml::{Body, Message, PmlError, Status};
use store::{Agents, Fifo, Record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryOptions {
    /// Outcomes per agent that trust is computed from.
    pub window: usize,
    /// How many recent `msgId`s are remembered to drop replays (oldest forgotten first).
    pub dedupe_capacity: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions { window: 50, dedupe_capacity: 1_000_000 }
    }
}

/// An agent as [`Registry::get`] returns it (a copy: the registry keeps its agents in a compact
/// form, `store.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub specialty: String,
    pub capacity: u32,
    pub load: u32,
    pub status: Status,
    /// Sender timestamp (ms) of the latest message from this agent.
    pub last_seen: f64,
    pub ledger: Ledger,
}

impl Agent {
    pub fn trust(&self) -> f64 {
        self.ledger.trust()
    }
}

/// So that an agent from [`Registry::get`] compares with one kept by reference.
impl PartialEq<&Agent> for Agent {
    fn eq(&self, other: &&Agent) -> bool {
        self == *other
    }
}

/// Bytes a registry has allocated, by part: capacities, allocator overhead not included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistryMemory {
    /// Per-agent records (profile, load, status, trust ledger): 64 bytes each.
    pub agents: usize,
    /// The ids, each kept once, and the map from id to agent.
    pub ids: usize,
    /// The specialty texts, each distinct one kept once.
    pub specialties: usize,
    /// Digests of the remembered msgIds.
    pub dedupe: usize,
    /// Digests of the remembered requests (task and requester).
    pub tasks: usize,
}

impl RegistryMemory {
    pub fn total(&self) -> usize {
        self.agents + self.ids + self.specialties + self.dedupe + self.tasks
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Applied now, or already applied before (a replay).
    pub ok: bool,
    /// A replay of a message already applied: nothing changed.
    pub duplicate: bool,
    /// The message's type, when it parsed.
    pub kind: Option<&'static str>,
    pub error: Option<PmlError>,
}

pub struct Registry {
    options: RegistryOptions,
    agents: Agents,
    /// Recent requests: task-id digest -> requester digest (feedback is checked against it).
    /// Bounded like `seen` (at least 1), oldest forgotten first.
    tasks: Fifo<u128>,
    /// 128-bit digests of applied msgIds (seeded xxh3: no string kept, a collision has odds of
    /// about 2^-128 per pair), `dedupe_capacity` at most, oldest forgotten first.
    seen: Fifo<()>,
    /// Per-registry seed of the digests (kept in snapshots so they stay comparable).
    digest_seed: u64,
    processed: u64,
    rejected: u64,
}

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Deserialize)]
struct Snapshot {
    version: u32,
    registry: RegistryIn,
}

impl Registry {
    pub fn new(options: RegistryOptions) -> Self {
        Registry {
            options: RegistryOptions { window: options.window.max(1), ..options },
            agents: Agents::new(),
            tasks: Fifo::new(options.dedupe_capacity.max(1)),
            seen: Fifo::new(options.dedupe_capacity),
            digest_seed: std::collections::hash_map::RandomState::new().build_hasher().finish(),
            processed: 0,
            rejected: 0,
        }
    }

    pub fn options(&self) -> RegistryOptions {
        self.options
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.len() == 0
    }

    /// A copy of the agent `id`.
    pub fn get(&self, id: &str) -> Option<Agent> {
        self.agents.find(id).map(|slot| self.agents.agent(slot))
    }

    pub fn ids_by_status(&self, status: Status) -> Vec<&str> {
        let mut ids: Vec<&str> = self.agents.iter().filter(|(_, a)| a.status == status).map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids
    }

    /// What the registry has allocated, by part.
    pub fn memory(&self) -> RegistryMemory {
        RegistryMemory {
            agents: self.agents.record_bytes(),
            ids: self.agents.id_bytes(),
            specialties: self.agents.text_bytes(),
            dedupe: self.seen.heap_bytes(),
            tasks: self.tasks.heap_bytes(),
        }
    }

    /// (messages applied, messages rejected) since creation.
    pub fn counters(&self) -> (u64, u64) {
        (self.processed, self.rejected)
    }

    pub fn process_batch<S: AsRef<str>>(&mut self, raws: &[S]) -> Vec<Outcome> {
        raws.iter().map(|r| self.process(r.as_ref())).collect()
    }

    /// Parses, validates and applies one message.
    pub fn process(&mut self, raw: &str) -> Outcome {
        self.apply_parsed(pml::parse(raw))
    }

    /// Applies a message parsed with [`pml::parse`]. Parsing needs no access to the registry, so
    /// callers can parse a batch before taking the registry's lock and hold it only to apply.
    pub fn apply_parsed(&mut self, parsed: Result<Message<'_>, PmlError>) -> Outcome {
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => return self.reject(None, e),
        };
        let kind = msg.body.kind();
        let digest = self.digest(&msg.msg_id);
        if self.seen.contains(digest) {
            return Outcome { ok: true, duplicate: true, kind: Some(kind), error: None };
        }
        match self.apply(&msg) {
            Ok(()) => {
                self.remember(digest);
                self.processed += 1;
                Outcome { ok: true, duplicate: false, kind: Some(kind), error: None }
            }
            Err(e) => self.reject(Some(kind), e),
        }
    }

    fn reject(&mut self, kind: Option<&'static str>, error: PmlError) -> Outcome {
        self.rejected += 1;
        Outcome { ok: false, duplicate: false, kind, error: Some(error) }
    }

    fn remember(&mut self, digest: u128) {
        // Forgets the oldest once full; remembers nothing at capacity 0.
        self.seen.insert(digest, ());
    }

    fn digest(&self, text: &str) -> u128 {
        xxh3_128_with_seed(text.as_bytes(), self.digest_seed)
    }

    fn agent_mut(&mut self, id: &str, ts: f64) -> Result<&mut Record, PmlError> {
        let slot = self.agents.find(id).ok_or_else(|| unknown_agent(id))?;
        let agent = self.agents.record_mut(slot);
        agent.last_seen = agent.last_seen.max(ts);
        Ok(agent)
    }

    fn apply(&mut self, msg: &Message<'_>) -> Result<(), PmlError> {
        match &msg.body {
            Body::Register { specialty, capacity } => {
                // Re-registering updates the profile and keeps the earned trust.
                let slot = match self.agents.find(&msg.from) {
                    Some(slot) => {
                        self.agents.set_specialty(slot, specialty);
                        slot
                    }
                    None => self.agents.insert(&msg.from, specialty, Ledger::new(self.options.window), msg.ts),
                };
                let agent = self.agents.record_mut(slot);
                agent.capacity = *capacity;
                agent.status = if agent.load >= agent.capacity { Status::Busy } else { Status::Idle };
                agent.last_seen = agent.last_seen.max(msg.ts);
            }
            Body::Heartbeat { load, status } => {
                let agent = self.agent_mut(&msg.from, msg.ts)?;
                if let Some(load) = load {
                    agent.load = *load;
                }
                agent.status = status.unwrap_or(if agent.load >= agent.capacity { Status::Busy } else { Status::Idle });
            }
            Body::Request { task_id, .. } => {
                // Requesters need not be registered agents (users, the runtime).
                // A new task forgets the oldest once full; a known one gets the new requester.
                let (task, requester) = (self.digest(task_id), self.digest(&msg.from));
                self.tasks.insert(task, requester);
            }
            Body::Offer { .. } => {
                self.agent_mut(&msg.from, msg.ts)?;
            }
            Body::Result { success, latency_ms, .. } => {
                let agent = self.agent_mut(&msg.from, msg.ts)?;
                agent.ledger.record(*success, *latency_ms);
            }
            Body::Feedback { success, latency_ms, task_id } => {
                let to = msg.to.as_deref().unwrap_or_default();
                if let Some(task) = task_id {
                    if let Some(&requester) = self.tasks.get(self.digest(task)) {
                        if requester != self.digest(&msg.from) {
                            return Err(PmlError::new(ErrorCode::PmlField, format!("task '{task}' was requested by someone else")));
                        }
                    }
                }
                let slot = self.agents.find(to).ok_or_else(|| unknown_agent(to))?;
                self.agents.record_mut(slot).ledger.record(*success, *latency_ms);
            }
            Body::Deregister => {
                let slot = self.agents.find(&msg.from).ok_or_else(|| unknown_agent(&msg.from))?;
                self.agents.remove(slot);
            }
        }
        Ok(())
    }

    /// Writes the whole state (agents, ledgers, remembered msgIds) as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let snapshot = SnapshotRef { version: SNAPSHOT_VERSION, registry: self };
        let write = || -> std::io::Result<()> {
            let file = std::fs::File::create(&tmp)?;
            let mut w = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut w, &snapshot).map_err(std::io::Error::other)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(path, e));
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    pub fn load(path: &Path) -> Result<Self> {
        // Read whole, then parsed from the slice: serde_json reads a `Read` byte by byte, which
        // took 4.9 s of a million agents' 337 MB snapshot.
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let snapshot: Snapshot =
            serde_json::from_slice(&bytes).map_err(|e| Error::CorruptSnapshot { path: path.to_path_buf(), reason: e.to_string() })?;
        drop(bytes);
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(Error::CorruptSnapshot { path: path.to_path_buf(), reason: format!("unsupported version {}", snapshot.version) });
        }
        Registry::try_from(snapshot.registry).map_err(|reason| Error::CorruptSnapshot { path: path.to_path_buf(), reason })
    }
}

fn unknown_agent(id: &str) -> PmlError {
    PmlError::new(ErrorCode::UnknownAgent, format!("agent '{id}' is not registered"))
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    registry: &'a Registry,
}

// Snapshots keep the JSON they had when the registry was a `HashMap<String, Agent>` beside a
// `HashSet` and a `VecDeque` of digests (and a `HashMap` and a `VecDeque` of tasks), so that
// snapshots written before load now and the other way round.

/// An agent as snapshots write it: [`Agent`]'s fields, borrowed.
#[derive(Serialize)]
struct AgentOut<'a> {
    id: &'a str,
    specialty: &'a str,
    capacity: u32,
    load: u32,
    status: Status,
    last_seen: f64,
    ledger: &'a Ledger,
}

struct AgentsOut<'a>(&'a Agents);

impl Serialize for AgentsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let agents = self.0;
        serializer.collect_map(agents.iter().map(|(id, r)| {
            let agent = AgentOut {
                id,
                specialty: agents.specialty(r),
                capacity: r.capacity,
                load: r.load,
                status: r.status,
                last_seen: r.last_seen,
                ledger: &r.ledger,
            };
            (id, agent)
        }))
    }
}

/// A [`Fifo`]'s keys, oldest first.
struct KeysOut<'a, V>(&'a Fifo<V>);

impl<V: Copy> Serialize for KeysOut<'_, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|(key, _)| key))
    }
}

/// The tasks as a map from task digest to requester digest.
struct TasksOut<'a>(&'a Fifo<u128>);

impl Serialize for TasksOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(task, requester)| (task, requester)))
    }
}

impl Serialize for Registry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = serializer.serialize_struct("Registry", 9)?;
        st.serialize_field("options", &self.options)?;
        st.serialize_field("agents", &AgentsOut(&self.agents))?;
        st.serialize_field("tasks", &TasksOut(&self.tasks))?;
        st.serialize_field("task_order", &KeysOut(&self.tasks))?;
        // A set and its order held the same digests; both are still written.
        st.serialize_field("seen", &KeysOut(&self.seen))?;
        st.serialize_field("seen_order", &KeysOut(&self.seen))?;
        st.serialize_field("digest_seed", &self.digest_seed)?;
        st.serialize_field("processed", &self.processed)?;
        st.serialize_field("rejected", &self.rejected)?;
        st.end()
    }
}

/// A registry as a snapshot holds it, before its checks.
#[derive(Deserialize)]
struct RegistryIn {
    options: RegistryOptions,
    agents: AgentsIn,
    tasks: HashMap<u128, u128, FastHash>,
    task_order: Vec<u128>,
    seen: Vec<u128>,
    seen_order: Vec<u128>,
    digest_seed: u64,
    processed: u64,
    rejected: u64,
}

/// The agents of a snapshot, read one by one into the compact store.
struct AgentsIn(std::result::Result<Agents, String>);

impl<'de> Deserialize<'de> for AgentsIn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = AgentsIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map from agent id to agent")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> std::result::Result<AgentsIn, M::Error> {
                let mut agents = Agents::new();
                while let Some((id, a)) = map.next_entry::<String, Agent>()? {
                    if a.id != id || agents.find(&id).is_some() {
                        return Ok(AgentsIn(Err(format!("agent '{id}' is listed twice or under another id"))));
                    }
                    if id.is_empty() || id.len() > pml::MAX_ID_BYTES {
                        return Ok(AgentsIn(Err(format!("an agent id of {} bytes", id.len()))));
                    }
                    let slot = agents.insert(&id, &a.specialty, a.ledger, a.last_seen);
                    let r = agents.record_mut(slot);
                    (r.capacity, r.load, r.status) = (a.capacity, a.load, a.status);
                }
                Ok(AgentsIn(Ok(agents)))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

impl TryFrom<RegistryIn> for Registry {
    type Error = String;

    fn try_from(r: RegistryIn) -> std::result::Result<Self, String> {
        let disagree = || "msgId set and order disagree".to_string();
        let mut seen = Fifo::new(r.options.dedupe_capacity);
        let mut tasks = Fifo::new(r.options.dedupe_capacity.max(1));
        if r.seen.len() != r.seen_order.len() || r.tasks.len() != r.task_order.len() {
            return Err(disagree());
        }
        for &digest in &r.seen_order {
            if !seen.insert(digest, ()) {
                return Err(disagree());
            }
        }
        for &task in &r.task_order {
            if !tasks.insert(task, *r.tasks.get(&task).ok_or_else(disagree)?) {
                return Err(disagree());
            }
        }
        if seen.len() != r.seen_order.len() || tasks.len() != r.task_order.len() || !r.seen.iter().all(|&d| seen.contains(d)) {
            return Err(disagree());
        }
        Ok(Registry {
            options: r.options,
            agents: r.agents.0?,
            tasks,
            seen,
            digest_seed: r.digest_seed,
            processed: r.processed,
            rejected: r.rejected,
        })
    }
}

impl<'de> Deserialize<'de> for Registry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Registry::try_from(RegistryIn::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
