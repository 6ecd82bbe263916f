//! The message bus: one connection per agent group, shared by all its agents, moving messages on
//! `exps/<exp>/agents/<agent>/<kind>` in batches.
//!
//! Transports: MQTT through `rumqttc` (to a broker URL, or to the embedded `rumqttd` broker started
//! on a free loopback port when no URL is given), or `local`, an in-process router with no broker.
//! Whatever the transport, a batch handed to [`Bus::publish`] resolves when every message in it is
//! accepted under its QoS (0: queued towards the broker; 1: PUBACK; 2: PUBCOMP), and inbound
//! messages wait in a bounded [`Inbox`] until the consumer takes them.

mod broker;
mod credit;
mod envelope;
mod inbox;
mod local;
mod mqtt;
mod streams;
mod topic;
mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub use broker::embedded_broker_url;
pub use envelope::Envelope;
pub use inbox::{Inbound, Inbox, Taken};
pub use streams::{Gap, ReceiveCounts};
pub use topic::{parse_topic, topic, validate_id, Kind, MAX_ID_BYTES};

pub(crate) use crate::io::runtime;
use crate::{Error, Result};
use streams::{EndMark, SendCounters};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl Qos {
    pub fn from_u8(q: u8) -> Result<Qos> {
        match q {
            0 => Ok(Qos::AtMostOnce),
            1 => Ok(Qos::AtLeastOnce),
            2 => Ok(Qos::ExactlyOnce),
            _ => Err(Error::InvalidArg(format!("qos must be 0, 1 or 2, got {q}"))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeMode {
    /// One filter per agent: `exps/<exp>/agents/<id>/#`.
    Agents,
    /// One filter for the experiment, `exps/<exp>/agents/#`, demultiplexed locally to the group's agents.
    Experiment,
}

impl SubscribeMode {
    pub fn parse(s: &str) -> Result<SubscribeMode> {
        match s {
            "agents" => Ok(SubscribeMode::Agents),
            "experiment" => Ok(SubscribeMode::Experiment),
            other => Err(Error::InvalidArg(format!("subscribe must be 'agents' or 'experiment', got {other:?}"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SubscribeMode::Agents => "agents",
            SubscribeMode::Experiment => "experiment",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V311,
}

impl Protocol {
    /// From the protocol level as MQTT numbers it: 5, or 4 for 3.1.1 (3 is read as 4 too).
    pub fn from_level(level: u32) -> Result<Protocol> {
        match level {
            5 => Ok(Protocol::V5),
            4 | 3 => Ok(Protocol::V311),
            other => Err(Error::InvalidArg(format!("protocol must be 5 or 4 (3.1.1), got {other}"))),
        }
    }

    /// The protocol level: 5, or 4 for 3.1.1.
    pub fn level(self) -> u32 {
        match self {
            Protocol::V5 => 5,
            Protocol::V311 => 4,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file of the CA that signed the broker's certificate.
    pub ca: Option<std::path::PathBuf>,
    /// PEM client certificate and key, for brokers that authenticate clients by certificate.
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug)]
pub struct BusOptions {
    /// `mqtt://host:port` or `mqtts://host:port` (user:password@ allowed); `None`: the embedded broker.
    pub url: Option<String>,
    /// `true`: the in-process router, no broker at all.
    pub local: bool,
    pub exp: String,
    pub client_id: String,
    pub agents: Vec<String>,
    pub subscribe: SubscribeMode,
    pub protocol: Protocol,
    /// QoS per kind, indexed by `Kind as usize` (defaults 1, 1, 2).
    pub qos: [Qos; 3],
    /// Persistent session (clean_session = false / clean_start = false with an expiry).
    pub persistent: bool,
    pub session_expiry_s: u32,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: Option<TlsOptions>,
    pub max_payload: usize,
    /// Unacknowledged QoS 1/2 publishes in flight on the connection.
    pub inflight: u16,
    pub inbox_capacity: usize,
    /// How many recent msgIds are remembered to drop duplicates.
    pub dedupe_window: usize,
    pub keep_alive_s: u16,
    pub connect_timeout_ms: u64,
    /// How long `close` waits for outstanding acknowledgements.
    pub close_timeout_ms: u64,
    /// A stream quiet this long gets an end mark, so that receivers learn of messages lost at its
    /// end without waiting for the sender's close (see `streams`); 0: marks at close only.
    pub end_mark_idle_ms: u64,
    /// QoS 1/2 messages a sender may have out that no receiver has reported reading yet (flow
    /// control across the broker, see `credit`); 0: credits off, neither held nor reported.
    /// `None`: 512 for an outside broker, 0 for the embedded one (with or without its URL), which
    /// drops nothing and is slower with credits.
    pub credit_window: Option<u32>,
}

impl BusOptions {
    pub fn new(exp: impl Into<String>, client_id: impl Into<String>) -> Self {
        BusOptions {
            url: None,
            local: false,
            exp: exp.into(),
            client_id: client_id.into(),
            agents: Vec::new(),
            subscribe: SubscribeMode::Agents,
            protocol: Protocol::V5,
            qos: [Qos::AtLeastOnce, Qos::AtLeastOnce, Qos::ExactlyOnce],
            persistent: true,
            session_expiry_s: 3600,
            username: None,
            password: None,
            tls: None,
            max_payload: 256 * 1024,
            inflight: 64,
            inbox_capacity: 65_536,
            dedupe_window: 1 << 20,
            keep_alive_s: 30,
            connect_timeout_ms: 10_000,
            close_timeout_ms: 30_000,
            end_mark_idle_ms: 5_000,
            credit_window: None,
        }
    }

    fn validate(&self) -> Result<()> {
        validate_id("experiment id", &self.exp)?;
        validate_id("client id", &self.client_id)?;
        for agent in &self.agents {
            validate_id("agent id", agent)?;
        }
        if self.max_payload == 0 || self.max_payload > 256 * 1024 * 1024 {
            return Err(Error::InvalidArg(format!("maxPayload must be in 1..=268435456, got {}", self.max_payload)));
        }
        if self.inflight == 0 || self.inflight == u16::MAX {
            return Err(Error::InvalidArg("inflight must be in 1..=65534".into()));
        }
        Ok(())
    }

    /// The credit window in force (see `credit_window`).
    pub(crate) fn credit_window(&self) -> u32 {
        self.credit_window.unwrap_or(match &self.url {
            Some(url) if !broker::is_embedded_broker_url(url) => DEFAULT_CREDIT_WINDOW,
            _ => 0,
        })
    }
}

/// Below Mosquitto's default queue limit (1,000 per client, beyond 20 in flight), with room to spare.
pub const DEFAULT_CREDIT_WINDOW: u32 = 512;

/// One message to send. `from` defaults to the client id; `msg_id` to `<src>-<n>`.
#[derive(Clone, Debug)]
pub struct Outbound {
    pub to: String,
    pub kind: Kind,
    pub from: Option<String>,
    pub msg_id: Option<String>,
    pub payload: Bytes,
}

/// A message ready for the wire: its topic parts and its envelope.
pub(crate) struct Stamped {
    pub to: String,
    pub kind: Kind,
    pub envelope: Envelope,
    pub payload: Bytes,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BusStats {
    /// Messages accepted under their QoS (publish promises settled for them).
    pub published: u64,
    /// Messages handed to the consumer's queue.
    pub delivered: u64,
    /// Messages delivered without an envelope (foreign clients).
    pub foreign: u64,
    /// Messages received for agents outside this group (wildcard subscription), not delivered.
    pub not_ours: u64,
    pub receive: ReceiveCounts,
    pub reconnects: u64,
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub inflight: u64,
    /// Messages waiting in the inbox for the consumer.
    pub queued: u64,
    /// QoS 1/2 messages sent on after their receivers reported nothing for a while (see `credit`).
    pub credit_released: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub published: AtomicU64,
    pub delivered: AtomicU64,
    pub foreign: AtomicU64,
    pub not_ours: AtomicU64,
    pub reconnects: AtomicU64,
    pub receive: Mutex<ReceiveCounts>,
}

/// What the transports share with the bus front.
pub(crate) struct Shared {
    pub opts: BusOptions,
    /// This bus instance's stream id: random per connect, so a restarted sender starts new streams.
    pub src: String,
    pub inbox: Arc<Inbox>,
    pub counters: Counters,
}

enum Link {
    Mqtt(mqtt::MqttLink),
    Local(local::LocalLink),
}

pub struct Bus {
    shared: Arc<Shared>,
    link: Link,
    next_msg: AtomicU64,
    seqs: Mutex<SendCounters>,
    closed: AtomicBool,
}

impl Bus {
    /// Connects (MQTT: after the broker acknowledged the session and every subscription). Shared,
    /// because a task of its own sends the end marks of quiet streams while the bus lives.
    pub async fn connect(opts: BusOptions) -> Result<Arc<Bus>> {
        opts.validate()?;
        let inbox = Arc::new(Inbox::new(opts.inbox_capacity));
        let src = format!("{:016x}", random_u64());
        let shared = Arc::new(Shared { opts, src, inbox, counters: Counters::default() });
        let link = if shared.opts.local {
            Link::Local(local::LocalLink::join(shared.clone()))
        } else {
            Link::Mqtt(mqtt::MqttLink::connect(shared.clone()).await?)
        };
        let seqs = Mutex::new(SendCounters::new(!shared.opts.local));
        let bus = Arc::new(Bus { shared, link, next_msg: AtomicU64::new(0), seqs, closed: AtomicBool::new(false) });
        let idle = bus.shared.opts.end_mark_idle_ms;
        if matches!(bus.link, Link::Mqtt(_)) && idle > 0 {
            runtime().spawn(mark_quiet_streams(Arc::downgrade(&bus), std::time::Duration::from_millis(idle)));
        }
        Ok(bus)
    }

    pub fn options(&self) -> &BusOptions {
        &self.shared.opts
    }

    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.shared.inbox
    }

    /// Checks every message first (ids, payload size): a bad one fails the whole batch before any
    /// is sent. Then stamps the envelopes and sends; resolves when all are accepted under their QoS.
    pub async fn publish(&self, batch: Vec<Outbound>) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::BusClosed);
        }
        let limit = self.shared.opts.max_payload;
        for (i, m) in batch.iter().enumerate() {
            validate_id(&format!("message {i}: recipient"), &m.to)?;
            if let Some(from) = &m.from {
                validate_id(&format!("message {i}: from"), from)?;
            }
            if let Some(id) = &m.msg_id {
                // Control characters would end the envelope's fields, and MQTT 5 brokers may refuse
                // them in a user property (Mosquitto drops the connection).
                if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
                    return Err(Error::InvalidArg(format!("message {i}: msgId must be 1 to 256 bytes without control characters")));
                }
            }
            if m.payload.len() > limit {
                return Err(Error::PayloadTooLarge { size: m.payload.len(), limit });
            }
        }
        let count = batch.len() as u64;
        match &self.link {
            Link::Local(link) => link.publish(self.stamp(batch)).await?,
            // The MQTT link stamps under its send lock, so seq order is wire order.
            Link::Mqtt(link) => link.publish(batch, |b| self.stamp(b)).await?,
        }
        self.shared.counters.published.fetch_add(count, Ordering::Relaxed);
        Ok(())
    }

    fn stamp(&self, batch: Vec<Outbound>) -> Vec<Stamped> {
        let ts = now_ms();
        let first = self.next_msg.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut seqs = self.seqs.lock().unwrap();
        batch
            .into_iter()
            .enumerate()
            .map(|(i, m)| Stamped {
                envelope: Envelope {
                    msg_id: m.msg_id.unwrap_or_else(|| format!("{}-{}", self.shared.src, first + i as u64)),
                    seq: seqs.next(&m.to, m.kind),
                    from: m.from.unwrap_or_else(|| self.shared.opts.client_id.clone()),
                    src: self.shared.src.clone(),
                    ts,
                },
                to: m.to,
                kind: m.kind,
                payload: m.payload,
            })
            .collect()
    }

    /// Everything queued for the consumer (at most `max` messages), and the gaps seen.
    pub fn take(&self, max: usize) -> Taken {
        self.shared.inbox.take(max)
    }

    /// Resolves when every message published so far is accepted under its QoS.
    pub async fn drain(&self) -> Result<()> {
        match &self.link {
            Link::Mqtt(link) => link.drain().await,
            Link::Local(_) => Ok(()),
        }
    }

    /// The end marks `pick` chooses, stamped. Called under the link's send lock, so each mark
    /// follows every message of its stream.
    fn marks(&self, pick: impl FnOnce(&mut SendCounters) -> Vec<EndMark>) -> Vec<Stamped> {
        let ts = now_ms();
        pick(&mut self.seqs.lock().unwrap())
            .into_iter()
            .map(|(to, kind, seq)| Stamped {
                envelope: Envelope {
                    msg_id: String::new(),
                    seq,
                    from: self.shared.opts.client_id.clone(),
                    src: self.shared.src.clone(),
                    ts,
                },
                to,
                kind,
                payload: Bytes::new(),
            })
            .collect()
    }

    /// Sends the end marks (MQTT), drains, then disconnects. Later publishes fail with
    /// `ERR_BUS_CLOSED`; messages already in the inbox can still be taken.
    pub async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let result = match &self.link {
            Link::Mqtt(link) => {
                // Each stream's end mark, so that a receiver learns of messages lost at its end
                // (see `streams`). They wait for room in the in-flight window like any message; a
                // broker that stays down gets them no longer than the acknowledgements.
                let limit = std::time::Duration::from_millis(self.shared.opts.close_timeout_ms);
                let marks = link.publish(Vec::new(), |_| self.marks(SendCounters::end_marks));
                let _ = tokio::time::timeout(limit, marks).await;
                link.close().await
            }
            Link::Local(link) => {
                link.leave();
                Ok(())
            }
        };
        self.shared.inbox.clear_waker();
        result
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> BusStats {
        let c = &self.shared.counters;
        BusStats {
            published: c.published.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            foreign: c.foreign.load(Ordering::Relaxed),
            not_ours: c.not_ours.load(Ordering::Relaxed),
            receive: *c.receive.lock().unwrap(),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            inflight: match &self.link {
                Link::Mqtt(link) => link.inflight(),
                Link::Local(_) => 0,
            },
            queued: self.shared.inbox.len() as u64,
            credit_released: match &self.link {
                Link::Mqtt(link) => link.credit_released(),
                Link::Local(_) => 0,
            },
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Link::Local(link) = &self.link {
            link.leave();
        }
        if let Link::Mqtt(link) = &self.link {
            link.abort();
        }
    }
}

/// Every `period` (`end_mark_idle_ms`), sends the end marks of the streams that went quiet (see `streams`).
/// Holds the bus only while sending, so the task ends when the last handle to it goes (a send
/// that waits on a broker that is down holds it until the broker acknowledges or `close` fails
/// the link).
async fn mark_quiet_streams(bus: std::sync::Weak<Bus>, period: std::time::Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate
    loop {
        ticks.tick().await;
        let Some(bus) = bus.upgrade() else { return };
        let Link::Mqtt(link) = &bus.link else { return };
        if bus.is_closed() {
            return;
        }
        // Marks wait for room in the in-flight window like any message, and the wait is never cut
        // short: a publish dropped halfway would leave the link's bookkeeping of what it wrote
        // half done. An error (the link closed) loses nothing: close marks every stream again.
        let _ = link.publish(Vec::new(), |_| bus.marks(SendCounters::quiet_marks)).await;
    }
}

/// The envelope's `ts`: milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// 64 random bits from the OS-seeded hasher (no RNG dependency for one id per connection).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_default_on_for_outside_brokers_only() {
        let mut o = BusOptions::new("e", "c");
        assert_eq!(o.credit_window(), 0, "no url: the embedded broker");
        o.url = Some("mqtt://127.0.0.1:1883".into());
        assert_eq!(o.credit_window(), DEFAULT_CREDIT_WINDOW);
        for protocol in [Protocol::V5, Protocol::V311] {
            o.url = Some(embedded_broker_url(protocol).unwrap());
            assert_eq!(o.credit_window(), 0, "the embedded broker by its URL");
        }
        o.credit_window = Some(7);
        assert_eq!(o.credit_window(), 7);
    }
}
