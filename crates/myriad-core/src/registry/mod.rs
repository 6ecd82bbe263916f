//! The agent registry: who exists, what they do, how loaded and how trustworthy they are.
//! It is driven by PML messages ([`pml`]); each message is applied at most once (by `msgId`), and a
//! bad message is rejected on its own without touching the rest of a batch.

pub mod ledger;
pub mod pml;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
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
    /// The message's type and sender, when it parsed.
    pub kind: Option<&'static str>,
    pub agent_id: Option<String>,
    pub error: Option<PmlError>,
}

#[derive(Serialize, Deserialize)]
pub struct Registry {
    options: RegistryOptions,
    agents: HashMap<String, Agent>,
    /// Requests seen, by task id: who asked (feedback and results are checked against it).
    tasks: HashMap<String, String>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
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
            agents: HashMap::new(),
            tasks: HashMap::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
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
        let msg = match pml::parse(raw) {
            Ok(m) => m,
            Err(e) => return self.reject(None, None, e),
        };
        let (kind, from) = (msg.body.kind(), msg.from.clone());
        if self.seen.contains(&msg.msg_id) {
            return Outcome { ok: true, duplicate: true, kind: Some(kind), agent_id: Some(from), error: None };
        }
        match self.apply(&msg) {
            Ok(()) => {
                self.remember(msg.msg_id);
                self.processed += 1;
                Outcome { ok: true, duplicate: false, kind: Some(kind), agent_id: Some(from), error: None }
            }
            Err(e) => self.reject(Some(kind), Some(from), e),
        }
    }

    fn reject(&mut self, kind: Option<&'static str>, agent_id: Option<String>, error: PmlError) -> Outcome {
        self.rejected += 1;
        Outcome { ok: false, duplicate: false, kind, agent_id, error: Some(error) }
    }

    fn remember(&mut self, msg_id: String) {
        if self.options.dedupe_capacity == 0 {
            return;
        }
        if self.seen_order.len() == self.options.dedupe_capacity {
            if let Some(oldest) = self.seen_order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(msg_id.clone());
        self.seen_order.push_back(msg_id);
    }

    fn agent_mut(&mut self, id: &str, ts: f64) -> Result<&mut Agent, PmlError> {
        let agent = self
            .agents
            .get_mut(id)
            .ok_or_else(|| PmlError::new("ERR_UNKNOWN_AGENT", format!("agent '{id}' is not registered")))?;
        agent.last_seen = agent.last_seen.max(ts);
        Ok(agent)
    }

    fn apply(&mut self, msg: &Message) -> Result<(), PmlError> {
        match &msg.body {
            Body::Register { specialty, capacity } => {
                let window = self.options.window;
                let agent = self.agents.entry(msg.from.clone()).or_insert_with(|| Agent {
                    id: msg.from.clone(),
                    specialty: String::new(),
                    capacity: 1,
                    load: 0,
                    status: Status::Idle,
                    last_seen: msg.ts,
                    ledger: Ledger::new(window),
                });
                // Re-registering updates the profile and keeps the earned trust.
                agent.specialty = specialty.clone();
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
                self.tasks.insert(task_id.clone(), msg.from.clone());
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
                    if let Some(requester) = self.tasks.get(task) {
                        if requester != &msg.from {
                            return Err(PmlError::new("ERR_PML_FIELD", format!("task '{task}' was requested by someone else")));
                        }
                    }
                }
                let agent = self
                    .agents
                    .get_mut(to)
                    .ok_or_else(|| PmlError::new("ERR_UNKNOWN_AGENT", format!("agent '{to}' is not registered")))?;
                agent.ledger.record(*success, *latency_ms);
            }
            Body::Deregister => {
                if self.agents.remove(&msg.from).is_none() {
                    return Err(PmlError::new("ERR_UNKNOWN_AGENT", format!("agent '{}' is not registered", msg.from)));
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
        if reg.seen.len() != reg.seen_order.len() {
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
