//! `transport: 'local'`: an in-process router for single-process runs and tests. Buses of the same
//! experiment in one process reach each other directly; no broker, no sockets, nothing lost (the
//! publisher waits while a recipient's inbox is full).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use foldhash::{HashMap, HashMapExt, HashSet};

use super::inbox::Inbound;
use super::{Shared, Stamped, SubscribeMode};
use crate::Result;

struct Member {
    id: u64,
    shared: Arc<Shared>,
    /// Wildcard members deliver only these agents (all, when the group named none).
    agents: Option<HashSet<String>>,
}

#[derive(Default)]
struct Routes {
    by_agent: HashMap<String, Vec<Arc<Member>>>,
    wildcard: Vec<Arc<Member>>,
}

fn experiments() -> &'static Mutex<HashMap<String, Arc<RwLock<Routes>>>> {
    static HUB: OnceLock<Mutex<HashMap<String, Arc<RwLock<Routes>>>>> = OnceLock::new();
    HUB.get_or_init(|| Mutex::new(HashMap::new()))
}

pub(crate) struct LocalLink {
    id: u64,
    routes: Arc<RwLock<Routes>>,
}

impl LocalLink {
    pub fn join(shared: Arc<Shared>) -> LocalLink {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let routes = experiments().lock().unwrap().entry(shared.opts.exp.clone()).or_default().clone();
        let mode = shared.opts.subscribe;
        let agents = shared.opts.agents.clone();
        let wildcard_agents = (!agents.is_empty()).then(|| agents.iter().cloned().collect());
        let member = Arc::new(Member { id, shared, agents: wildcard_agents });
        let mut r = routes.write().unwrap();
        match mode {
            SubscribeMode::Agents => {
                for agent in agents {
                    r.by_agent.entry(agent).or_default().push(member.clone());
                }
            }
            SubscribeMode::Experiment => r.wildcard.push(member),
        }
        drop(r);
        LocalLink { id, routes }
    }

    /// Routes each message to every member subscribed to its recipient, in order per member.
    pub async fn publish(&self, batch: Vec<Stamped>) -> Result<()> {
        let mut deliveries: Vec<(Arc<Member>, Vec<Inbound>)> = Vec::new();
        {
            let routes = self.routes.read().unwrap();
            for m in batch {
                let direct = routes.by_agent.get(&m.to).map(|v| v.as_slice()).unwrap_or(&[]);
                let wild = routes.wildcard.iter().filter(|w| w.agents.as_ref().is_none_or(|a| a.contains(&m.to)));
                for member in direct.iter().chain(wild) {
                    let inbound = Inbound {
                        agent: m.to.clone(),
                        kind: m.kind,
                        from: m.envelope.from.clone(),
                        msg_id: m.envelope.msg_id.clone(),
                        seq: m.envelope.seq,
                        ts: m.envelope.ts,
                        payload: m.payload.clone(),
                    };
                    match deliveries.iter_mut().find(|(d, _)| d.id == member.id) {
                        Some((_, list)) => list.push(inbound),
                        None => deliveries.push((member.clone(), vec![inbound])),
                    }
                }
            }
        }
        for (member, messages) in deliveries {
            let n = messages.len() as u64;
            member.shared.inbox.push(messages, Vec::new()).await;
            member.shared.counters.delivered.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }

    pub fn leave(&self) {
        let mut r = self.routes.write().unwrap();
        r.wildcard.retain(|m| m.id != self.id);
        r.by_agent.retain(|_, members| {
            members.retain(|m| m.id != self.id);
            !members.is_empty()
        });
    }
}
