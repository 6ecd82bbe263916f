use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use myriad_core::registry::pml::{self, Status};
use myriad_core::{Outcome, RegistryOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{guarded, invalid, Result};
use crate::settle::Job;

/// Options of `NativeRegistry.create`, documented in the TS schema `src/registry/options.ts`.
#[napi(object)]
#[derive(Default)]
pub struct NativeRegistryOptions {
    pub window: Option<u32>,
    pub dedupe_capacity: Option<u32>,
}

impl NativeRegistryOptions {
    fn into_core(self) -> RegistryOptions {
        let d = RegistryOptions::default();
        RegistryOptions {
            window: self.window.map_or(d.window, |v| v as usize),
            dedupe_capacity: self.dedupe_capacity.map_or(d.dedupe_capacity, |v| v as usize),
        }
    }
}

/// A rejected message of a batch.
#[napi(object)]
pub struct Rejection {
    pub index: u32,
    pub code: String,
    pub reason: String,
}

/// Results of a batch, compact so that a batch of 10^5 messages does not cost 10^5 JS objects made
/// through N-API: one code per message (see `outcome_code`) plus the rejections in detail.
#[napi(object)]
pub struct BatchOutcome {
    pub codes: Uint32Array,
    pub rejections: Vec<Rejection>,
}

const KINDS: [&str; 7] = ["register", "heartbeat", "request", "offer", "result", "feedback", "deregister"];

/// `kind_index << 2 | status`, status 0 = applied, 1 = duplicate, 2 = rejected, with
/// `kind_index` 7 when the message did not parse far enough to have a type.
fn outcome_code(o: &Outcome) -> u32 {
    let kind = o.kind.and_then(|k| KINDS.iter().position(|x| *x == k)).unwrap_or(7) as u32;
    let status = if !o.ok {
        2
    } else if o.duplicate {
        1
    } else {
        0
    };
    kind << 2 | status
}

fn batch_outcome(outcomes: Vec<Outcome>) -> BatchOutcome {
    let codes: Vec<u32> = outcomes.iter().map(outcome_code).collect();
    let rejections = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(i, o)| o.error.map(|e| Rejection { index: i as u32, code: e.code.as_str().into(), reason: e.reason }))
        .collect();
    BatchOutcome { codes: Uint32Array::new(codes), rejections }
}

#[napi(object)]
pub struct AgentInfo {
    pub id: String,
    pub specialty: String,
    /// Posterior mean success rate over the window (0.5 with no evidence).
    pub trust: f64,
    /// Response-time EMA in ms, once any outcome carried a latency.
    pub response_ms: Option<f64>,
    pub capacity: u32,
    pub load: u32,
    pub status: String,
    pub last_seen: f64,
    /// Outcomes in the trust window / ever recorded.
    pub window_outcomes: u32,
    pub total_outcomes: f64,
}

#[napi(object)]
pub struct RegistryCounters {
    pub processed: f64,
    pub rejected: f64,
    pub agents: u32,
}

type Shared = Arc<Mutex<myriad_core::Registry>>;

fn pieces(joined: &[u16], lengths: &[u32]) -> myriad_core::Result<crate::text::Pieces> {
    crate::text::Pieces::split(joined, lengths)
        .ok_or_else(|| myriad_core::Error::InvalidArg(format!("message lengths do not add up to the {} UTF-16 units sent", joined.len())))
}

fn lock(inner: &Shared) -> myriad_core::Result<MutexGuard<'_, myriad_core::Registry>> {
    inner.lock().map_err(|_| myriad_core::Error::Internal("registry lock poisoned".into()))
}

/// The agent registry with its trust ledger, driven by PML messages.
#[napi]
pub struct NativeRegistry {
    inner: Shared,
}

fn shared(registry: myriad_core::Registry) -> NativeRegistry {
    NativeRegistry { inner: Arc::new(Mutex::new(registry)) }
}

#[napi]
impl NativeRegistry {
    /// An empty registry.
    #[napi(factory, catch_unwind)]
    pub fn create(options: Option<NativeRegistryOptions>) -> Result<Self> {
        guarded(|| Ok(shared(myriad_core::Registry::new(options.unwrap_or_default().into_core()))))
    }

    /// Applies a batch of PML messages off the JS thread. The messages cross as one string, their
    /// concatenation, with each one's length in UTF-16 units (see `text::Pieces`).
    #[napi(ts_args_type = "joined: string, lengths: Uint32Array", ts_return_type = "Promise<BatchOutcome>")]
    pub fn process(&self, joined: Utf16String, lengths: Uint32Array) -> AsyncTask<Job<BatchOutcome>> {
        let inner = self.inner.clone();
        let lengths = lengths.to_vec();
        Job::spawn(move || {
            let messages = pieces(&joined, &lengths)?;
            // Parse before taking the lock: batches from concurrent callers parse in parallel.
            let parsed: Vec<_> = messages.iter().map(pml::parse).collect();
            let mut registry = lock(&inner)?;
            Ok(batch_outcome(parsed.into_iter().map(|p| registry.apply_parsed(p)).collect()))
        })
    }

    /// The same, on the calling thread: for small batches, where a thread hop costs more.
    #[napi(catch_unwind, ts_args_type = "joined: string, lengths: Uint32Array")]
    pub fn process_sync(&self, joined: Utf16String, lengths: Uint32Array) -> Result<BatchOutcome> {
        guarded(|| {
            let messages = pieces(&joined, &lengths)?;
            let mut registry = lock(&self.inner)?;
            Ok(batch_outcome(messages.iter().map(|m| registry.process(m)).collect()))
        })
    }

    /// One message, on the calling thread: its outcome code, or the rejection (index 0).
    #[napi(catch_unwind)]
    pub fn handle(&self, message: String) -> Result<Either<u32, Rejection>> {
        guarded(|| {
            let o = lock(&self.inner)?.process(&message);
            Ok(match o.error {
                None => Either::A(outcome_code(&o)),
                Some(e) => Either::B(Rejection { index: 0, code: e.code.as_str().into(), reason: e.reason }),
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn get(&self, id: String) -> Result<Option<AgentInfo>> {
        guarded(|| {
            Ok(lock(&self.inner)?.get(&id).map(|a| AgentInfo {
                id: a.id.clone(),
                specialty: a.specialty.clone(),
                trust: a.trust(),
                response_ms: a.ledger.response_ms(),
                capacity: a.capacity,
                load: a.load,
                status: a.status.name().to_string(),
                last_seen: a.last_seen,
                window_outcomes: a.ledger.window_len() as u32,
                total_outcomes: a.ledger.total_outcomes() as f64,
            }))
        })
    }

    /// Ids of the agents in `status` (`idle`, `busy` or `offline`), sorted.
    #[napi(catch_unwind)]
    pub fn ids_by_status(&self, status: String) -> Result<Vec<String>> {
        let status = Status::parse(&status).ok_or_else(|| invalid(format!("status must be idle, busy or offline, got '{status}'")))?;
        guarded(|| Ok(lock(&self.inner)?.ids_by_status(status).into_iter().map(str::to_string).collect()))
    }

    #[napi(catch_unwind)]
    pub fn counters(&self) -> Result<RegistryCounters> {
        guarded(|| {
            let reg = lock(&self.inner)?;
            let (processed, rejected) = reg.counters();
            Ok(RegistryCounters { processed: processed as f64, rejected: rejected as f64, agents: reg.len() as u32 })
        })
    }

    /// Writes a JSON snapshot (agents, ledgers, remembered msgIds), atomically.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save(&self, path: String) -> AsyncTask<Job<()>> {
        let inner = self.inner.clone();
        Job::spawn(move || lock(&inner)?.save(&PathBuf::from(path)))
    }

    /// Reads a snapshot written by `save`.
    #[napi(ts_return_type = "Promise<NativeRegistry>")]
    pub fn load(path: String) -> AsyncTask<Job<NativeRegistry>> {
        Job::spawn(move || Ok(shared(myriad_core::Registry::load(&PathBuf::from(path))?)))
    }
}
