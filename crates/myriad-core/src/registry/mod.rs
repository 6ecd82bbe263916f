//! The agent registry: who exists, what they do, how loaded and how trustworthy they are.
//! It is driven by PML messages ([`pml`]); each message is applied at most once (by `msgId`), and a
//! bad message is rejected on its own without touching the rest of a batch.

pub mod ledger;
pub mod pml;
mod pml_scan;

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use foldhash::fast::RandomState as FastHash;
use xxhash_rust::xxh3::xxh3_128_with_seed;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};
use ledger::Ledger;
use pml::{Body, Message, PmlError, Status};

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

#[derive(Serialize, Deserialize)]
pub struct Registry {
    options: RegistryOptions,
    agents: HashMap<String, Agent, FastHash>,
    /// Recent requests: task-id digest -> requester digest (feedback is checked against it).
    /// Bounded like `seen`, oldest forgotten first.
    tasks: HashMap<u128, u128, FastHash>,
    task_order: VecDeque<u128>,
    /// 128-bit digests of applied msgIds (seeded xxh3: no string kept, a collision has odds of
    /// about 2^-128 per pair), in a set for lookups and a queue for eviction order.
    seen: HashSet<u128, FastHash>,
    seen_order: VecDeque<u128>,
    /// Per-registry seed of the digests (kept in snapshots so they stay comparable).
    digest_seed: u64,
    processed: u64,
    rejected: u64,
}

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    registry: Registry,
}

impl Registry {
    pub fn new(options: RegistryOptions) -> Self {
        Registry {
            options: RegistryOptions { window: options.window.max(1), ..options },
            agents: HashMap::default(),
            tasks: HashMap::default(),
            task_order: VecDeque::new(),
            seen: HashSet::default(),
            seen_order: VecDeque::new(),
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
        self.agents.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }

    pub fn ids_by_status(&self, status: Status) -> Vec<&str> {
        let mut ids: Vec<&str> = self.agents.values().filter(|a| a.status == status).map(|a| a.id.as_str()).collect();
        ids.sort_unstable();
        ids
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
        if self.seen.contains(&digest) {
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
        if self.options.dedupe_capacity == 0 {
            return;
        }
        if self.seen_order.len() == self.options.dedupe_capacity {
            if let Some(oldest) = self.seen_order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(digest);
        self.seen_order.push_back(digest);
    }

    fn digest(&self, text: &str) -> u128 {
        xxh3_128_with_seed(text.as_bytes(), self.digest_seed)
    }

    fn agent_mut(&mut self, id: &str, ts: f64) -> Result<&mut Agent, PmlError> {
        let agent =
            self.agents.get_mut(id).ok_or_else(|| PmlError::new(ErrorCode::UnknownAgent, format!("agent '{id}' is not registered")))?;
        agent.last_seen = agent.last_seen.max(ts);
        Ok(agent)
    }

    fn apply(&mut self, msg: &Message<'_>) -> Result<(), PmlError> {
        match &msg.body {
            Body::Register { specialty, capacity } => {
                let window = self.options.window;
                let agent = self.agents.entry(msg.from.to_string()).or_insert_with(|| Agent {
                    id: msg.from.to_string(),
                    specialty: String::new(),
                    capacity: 1,
                    load: 0,
                    status: Status::Idle,
                    last_seen: msg.ts,
                    ledger: Ledger::new(window),
                });
                // Re-registering updates the profile and keeps the earned trust.
                agent.specialty = specialty.to_string();
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
                let (task, requester) = (self.digest(task_id), self.digest(&msg.from));
                if self.tasks.insert(task, requester).is_none() {
                    self.task_order.push_back(task);
                    if self.task_order.len() > self.options.dedupe_capacity.max(1) {
                        if let Some(oldest) = self.task_order.pop_front() {
                            self.tasks.remove(&oldest);
                        }
                    }
                }
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
                    if let Some(&requester) = self.tasks.get(&self.digest(task)) {
                        if requester != self.digest(&msg.from) {
                            return Err(PmlError::new(ErrorCode::PmlField, format!("task '{task}' was requested by someone else")));
                        }
                    }
                }
                let agent = self
                    .agents
                    .get_mut(to)
                    .ok_or_else(|| PmlError::new(ErrorCode::UnknownAgent, format!("agent '{to}' is not registered")))?;
                agent.ledger.record(*success, *latency_ms);
            }
            Body::Deregister => {
                if self.agents.remove(msg.from.as_ref()).is_none() {
                    return Err(PmlError::new(ErrorCode::UnknownAgent, format!("agent '{}' is not registered", msg.from)));
                }
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
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let snapshot: Snapshot = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|e| Error::CorruptSnapshot { path: path.to_path_buf(), reason: e.to_string() })?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(Error::CorruptSnapshot { path: path.to_path_buf(), reason: format!("unsupported version {}", snapshot.version) });
        }
        let reg = snapshot.registry;
        if reg.seen.len() != reg.seen_order.len() || reg.tasks.len() != reg.task_order.len() {
            return Err(Error::CorruptSnapshot { path: path.to_path_buf(), reason: "msgId set and order disagree".into() });
        }
        Ok(reg)
    }
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    registry: &'a Registry,
}
