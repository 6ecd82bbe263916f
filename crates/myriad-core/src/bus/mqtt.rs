//! The MQTT link: one rumqttc connection per bus, a driver task that polls it, and the
//! bookkeeping that settles each publish batch when the broker has acknowledged all of it.
//!
//! Two tasks, because rumqttc deadlocks when the task that polls the event loop also waits to
//! publish: publishers put requests into rumqttc's bounded channel (the backpressure towards the
//! broker), the driver polls. Acknowledgements name packet ids, which rumqttc assigns when it
//! writes a publish; the driver learns them from `PublishWritten(pkid)` events, which come in the
//! order the channel delivered the requests, so a FIFO of tickets (pushed in channel order under
//! the send lock) pairs each written pkid with its batch.
//!
//! Reconnects: rumqttc keeps unacknowledged publishes for retransmission but throws them away when
//! the broker starts a fresh session. The driver takes them out after every connection error and
//! puts them back after the next CONNACK (after re-subscribing when the session is new), so no
//! accepted-for-sending message is lost; the receivers drop the duplicates this can create.
//!
//! Credits (credit.rs): the driver counts what it reads from each sender and a reporter task
//! tells them; publishers wait at the credit gate before taking a window permit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foldhash::{HashMap, HashSet};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use super::credit::{credit_topic, CreditGate, CreditLedger, REPORT_GAP};
use super::inbox::Inbound;
use super::streams::{ReceiveState, Verdict};
use super::topic::{agent_filter, experiment_filter, parse_topic, topic};
use super::wire::{Wire, WireConfig, WireEvent, V311, V5};
use super::{broker, runtime, Outbound, Protocol, Qos, Shared, Stamped, SubscribeMode};
use crate::{Error, Result};

/// One publish batch: settles when its last QoS 1/2 message is acknowledged.
struct Ticket {
    remaining: AtomicUsize,
    done: Mutex<Option<oneshot::Sender<Result<()>>>>,
}

impl Ticket {
    fn settle_one(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish(Ok(()));
        }
    }

    fn finish(&self, result: Result<()>) {
        if let Some(tx) = self.done.lock().unwrap().take() {
            let _ = tx.send(result);
        }
    }
}

struct Tracking {
    /// Our own in-flight window (QoS 1/2 messages sent and not acknowledged). rumqttc resends its
    /// pending requests after a reconnect without looking at its in-flight limit, and numbers new
    /// ones on from the last packet id, cycling through as many ids as its limit. So that this
    /// burst never reuses an id still in flight (which would make rumqttc hold one message back
    /// and let later ones overtake it), the window is at most that many: with acknowledgements in
    /// order, the id a new message gets is that many messages old, and at most window - 1 older
    /// ones are unacknowledged. rumqttc's limit is the window plus one, or an MQTT 5 broker's
    /// receive maximum, which the window then equals (tested across a broker restart).
    window: tokio::sync::Semaphore,
    /// Permits still to retire after the broker announced a smaller receive maximum (MQTT 5).
    window_debt: AtomicUsize,
    window_size: AtomicUsize,
    /// QoS 1/2 messages handed to rumqttc whose packet id is not known yet, in channel order.
    fifo: Mutex<VecDeque<Arc<Ticket>>>,
    /// Written, not yet acknowledged, by packet id, with the order they were written in.
    inflight: Mutex<HashMap<u16, (u64, Arc<Ticket>)>>,
    qos0_sent: AtomicU64,
    qos0_written: AtomicU64,
    changed: Notify,
}

impl Tracking {
    fn new(window: usize) -> Tracking {
        Tracking {
            window: tokio::sync::Semaphore::new(window),
            window_debt: AtomicUsize::new(0),
            window_size: AtomicUsize::new(window),
            fifo: Mutex::default(),
            inflight: Mutex::default(),
            qos0_sent: AtomicU64::new(0),
            qos0_written: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    /// Shrinks the window to `size` (never grows it back: a broker that once said less means it).
    fn shrink_window(&self, size: usize) {
        let current = self.window_size.load(Ordering::Acquire);
        if size < current {
            self.window_size.store(size, Ordering::Release);
            let retired = self.window.forget_permits(current - size);
            self.window_debt.fetch_add(current - size - retired, Ordering::AcqRel);
        }
    }

    /// One acknowledged message gives its permit back (or pays off the debt).
    fn release_one(&self) {
        let paid = self.window_debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1)).is_ok();
        if !paid {
            self.window.add_permits(1);
        }
    }

    // Lock discipline: never hold `fifo` and `inflight` at once (one statement per lock).
    fn outstanding(&self) -> usize {
        let queued = self.fifo.lock().unwrap().len();
        let written = self.inflight.lock().unwrap().len();
        queued + written
    }

    fn idle(&self) -> bool {
        self.outstanding() == 0 && self.qos0_written.load(Ordering::Acquire) >= self.qos0_sent.load(Ordering::Acquire)
    }

    fn fail_all(&self, reason: &str) {
        self.window.close();
        let queued: Vec<_> = self.fifo.lock().unwrap().drain(..).collect();
        let written: Vec<_> = self.inflight.lock().unwrap().drain().map(|(_, (_, t))| t).collect();
        for t in queued.into_iter().chain(written) {
            t.finish(Err(Error::BusConnect(format!("batch not acknowledged: {reason}"))));
        }
        self.changed.notify_waiters();
    }
}

#[derive(Clone)]
enum Client {
    V311(<V311 as Wire>::Client),
    V5(<V5 as Wire>::Client),
}

pub(crate) struct MqttLink {
    shared: Arc<Shared>,
    client: tokio::sync::Mutex<Client>,
    track: Arc<Tracking>,
    gate: Arc<CreditGate>,
    closing: Arc<AtomicBool>,
    driver: Mutex<Option<JoinHandle<()>>>,
    reporter: Mutex<Option<JoinHandle<()>>>,
}

impl MqttLink {
    pub async fn connect(shared: Arc<Shared>) -> Result<MqttLink> {
        let opts = &shared.opts;
        let url = match &opts.url {
            Some(url) => url.clone(),
            None => broker::embedded_broker_url(opts.protocol)?,
        };
        let cfg = wire_config(&shared, &url)?;
        let mut filters: Vec<(String, Qos)> = match opts.subscribe {
            SubscribeMode::Agents => opts.agents.iter().map(|a| (agent_filter(&opts.exp, a), max_qos(&opts.qos))).collect(),
            SubscribeMode::Experiment => vec![(experiment_filter(&opts.exp), max_qos(&opts.qos))],
        };
        let credits = credit_topic(&opts.exp, &shared.src);
        let credit_window = opts.credit_window();
        if credit_window > 0 {
            filters.push((credits.clone(), Qos::AtMostOnce));
        }
        let track = Arc::new(Tracking::new(opts.inflight as usize));
        let gate = Arc::new(CreditGate::new(credit_window as u64));
        let ledger = Arc::new(CreditLedger::default());
        let closing = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = oneshot::channel();
        let driver = Driver {
            shared: shared.clone(),
            track: track.clone(),
            gate: gate.clone(),
            ledger: ledger.clone(),
            credits,
            credits_prefix: credit_topic(&opts.exp, ""),
            closing: closing.clone(),
            filters,
            ready: Some(ready_tx),
        };
        let (client, handle) = match opts.protocol {
            Protocol::V311 => {
                let (client, lp) = V311::open(&cfg);
                (Client::V311(client), runtime().spawn(driver.run::<V311>(lp)))
            }
            Protocol::V5 => {
                let (client, lp) = V5::open(&cfg);
                (Client::V5(client), runtime().spawn(driver.run::<V5>(lp)))
            }
        };
        let timeout = Duration::from_millis(opts.connect_timeout_ms);
        let outcome = match tokio::time::timeout(timeout, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(Error::BusConnect(format!("{url}: {reason}"))),
            Ok(Err(_)) => Err(Error::BusConnect(format!("{url}: the connection task ended"))),
            Err(_) => Err(Error::BusConnect(format!("{url}: no CONNACK/SUBACK within {} ms", opts.connect_timeout_ms))),
        };
        if let Err(e) = outcome {
            handle.abort();
            return Err(e);
        }
        // A bus without credits neither holds its sends nor reports what it reads: off is all off.
        let reporter = gate.is_on().then(|| runtime().spawn(report_credits(shared.clone(), client.clone(), track.clone(), ledger)));
        Ok(MqttLink {
            shared,
            client: tokio::sync::Mutex::new(client),
            track,
            gate,
            closing,
            driver: Mutex::new(Some(handle)),
            reporter: Mutex::new(reporter),
        })
    }

    /// Sends the batch in order (stamped under the send lock, so `seq` order is wire order) and
    /// resolves when the broker acknowledged every QoS 1/2 message of it.
    pub async fn publish(&self, batch: Vec<Outbound>, stamp: impl FnOnce(Vec<Outbound>) -> Vec<Stamped>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        // One extra count, released after the last send, so the ticket cannot settle mid-batch.
        let ticket = Arc::new(Ticket { remaining: AtomicUsize::new(1), done: Mutex::new(Some(tx)) });
        {
            let client = self.client.lock().await;
            if self.closing.load(Ordering::SeqCst) {
                return Err(Error::BusClosed);
            }
            for m in stamp(batch) {
                let qos = self.shared.opts.qos[m.kind as usize];
                if qos == Qos::AtMostOnce {
                    self.track.qos0_sent.fetch_add(1, Ordering::AcqRel);
                } else {
                    self.gate.admit().await;
                    match self.track.window.acquire().await {
                        Ok(permit) => permit.forget(),
                        Err(_) => return Err(Error::BusClosed),
                    }
                    ticket.remaining.fetch_add(1, Ordering::AcqRel);
                    self.track.fifo.lock().unwrap().push_back(ticket.clone());
                }
                let t = topic(&self.shared.opts.exp, &m.to, m.kind);
                let sent = match &*client {
                    Client::V311(c) => V311::publish(c, t, qos, m.payload, &m.envelope).await,
                    Client::V5(c) => V5::publish(c, t, qos, m.payload, &m.envelope).await,
                };
                if let Err(reason) = sent {
                    self.track.fail_all(&reason);
                    return Err(Error::BusClosed);
                }
            }
        }
        ticket.settle_one();
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::BusClosed),
        }
    }

    pub async fn drain(&self) -> Result<()> {
        // Waits for batches being sent right now, then for their acknowledgements.
        drop(self.client.lock().await);
        loop {
            let changed = self.track.changed.notified();
            if self.track.idle() {
                return Ok(());
            }
            if self.driver.lock().unwrap().as_ref().is_none_or(|h| h.is_finished()) {
                return Err(Error::BusClosed);
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
        }
    }

    /// Waits for the acknowledgements up to `close_timeout_ms` (a broker that stays down cannot
    /// take them); batches still unacknowledged then fail with the reason, never silently.
    pub async fn close(&self) -> Result<()> {
        let limit = Duration::from_millis(self.shared.opts.close_timeout_ms);
        let drained = match tokio::time::timeout(limit, self.drain()).await {
            Ok(result) => result,
            Err(_) => Err(Error::BusConnect(format!(
                "closed with {} message(s) unacknowledged after {} ms",
                self.track.outstanding(),
                limit.as_millis()
            ))),
        };
        self.closing.store(true, Ordering::SeqCst);
        if let Some(reporter) = self.reporter.lock().unwrap().take() {
            reporter.abort();
        }
        {
            let client = self.client.lock().await;
            let _ = match &*client {
                Client::V311(c) => V311::disconnect(c).await,
                Client::V5(c) => V5::disconnect(c).await,
            };
        }
        let handle = self.driver.lock().unwrap().take();
        if let Some(mut handle) = handle {
            if tokio::time::timeout(Duration::from_secs(2), &mut handle).await.is_err() {
                handle.abort();
            }
        }
        self.track.fail_all("the bus was closed");
        drained
    }

    pub fn inflight(&self) -> u64 {
        self.track.outstanding() as u64
    }

    pub fn credit_released(&self) -> u64 {
        self.gate.released()
    }

    pub fn abort(&self) {
        for task in [&self.driver, &self.reporter] {
            if let Some(handle) = task.lock().unwrap().take() {
                handle.abort();
            }
        }
    }
}

/// Tells senders how many of their QoS 1/2 messages this bus has read (see credit.rs): whenever
/// a count is unreported, at most once per `REPORT_GAP`. Publishes on a clone of the client,
/// outside the send lock: a publisher waiting at its credit gate holds that lock, and two buses
/// that wait for each other's credits must still be able to report.
async fn report_credits(shared: Arc<Shared>, client: Client, track: Arc<Tracking>, ledger: Arc<CreditLedger>) {
    loop {
        ledger.due().await;
        for (src, report) in ledger.take_reports(&shared.src) {
            let topic = credit_topic(&shared.opts.exp, &src);
            track.qos0_sent.fetch_add(1, Ordering::AcqRel);
            let sent = match &client {
                Client::V311(c) => V311::publish_plain(c, topic, report.into()).await,
                Client::V5(c) => V5::publish_plain(c, topic, report.into()).await,
            };
            if sent.is_err() {
                // The link is closing (rumqttc's channel is gone); this one will never be written.
                track.qos0_sent.fetch_sub(1, Ordering::AcqRel);
                return;
            }
        }
        tokio::time::sleep(REPORT_GAP).await;
    }
}

/// The task that polls the connection: acknowledgements, inbound messages, reconnects.
struct Driver {
    shared: Arc<Shared>,
    track: Arc<Tracking>,
    gate: Arc<CreditGate>,
    ledger: Arc<CreditLedger>,
    /// Our own credit topic: reports from our receivers; and that of any bus of the experiment.
    credits: String,
    credits_prefix: String,
    closing: Arc<AtomicBool>,
    filters: Vec<(String, Qos)>,
    ready: Option<oneshot::Sender<std::result::Result<(), String>>>,
}

impl Driver {
    async fn run<W: Wire>(mut self, mut lp: W::Loop) {
        let shared = self.shared.clone();
        let opts = &shared.opts;
        let ours: Option<HashSet<String>> =
            (opts.subscribe == SubscribeMode::Experiment && !opts.agents.is_empty()).then(|| opts.agents.iter().cloned().collect());
        let mut receive = ReceiveState::new(opts.dedupe_window);
        let mut saved: Vec<W::Request> = Vec::new();
        let mut connected_once = false;
        let mut subacks_due = 0usize;
        let mut backoff = Duration::from_millis(50);
        let mut written = 0u64;
        loop {
            let event = match W::poll(&mut lp).await {
                Ok(event) => event,
                Err(reason) => {
                    if self.closing.load(Ordering::SeqCst) {
                        break;
                    }
                    if !connected_once {
                        if let Some(ready) = self.ready.take() {
                            let _ = ready.send(Err(reason));
                        }
                        return;
                    }
                    saved.extend(W::take_pending(&mut lp));
                    self.retransmit_in_written_order::<W>(&mut saved);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            match event {
                WireEvent::ConnAck { session_present, receive_max } => {
                    backoff = Duration::from_millis(50);
                    if let Some(max) = receive_max {
                        self.track.shrink_window((max as usize).max(1));
                    }
                    let subscribe: &[(String, Qos)] = if !connected_once || !session_present { &self.filters } else { &[] };
                    subacks_due = W::restore_pending(&mut lp, subscribe, std::mem::take(&mut saved));
                    if connected_once {
                        self.shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    connected_once = true;
                    if subacks_due == 0 {
                        self.signal_ready(Ok(()));
                    }
                }
                WireEvent::SubAck { refused } => {
                    if refused > 0 {
                        self.signal_ready(Err(format!("the broker refused {refused} subscription(s)")));
                    }
                    subacks_due = subacks_due.saturating_sub(1);
                    if subacks_due == 0 {
                        self.signal_ready(Ok(()));
                    }
                }
                WireEvent::PublishWritten(0) => {
                    self.track.qos0_written.fetch_add(1, Ordering::AcqRel);
                    self.track.changed.notify_waiters();
                }
                WireEvent::PublishWritten(pkid) => {
                    // A pkid already in flight is a retransmission after a reconnect. (Only this
                    // task inserts, so the check and the insert need not hold one lock.)
                    let retransmission = self.track.inflight.lock().unwrap().contains_key(&pkid);
                    if !retransmission {
                        let ticket = self.track.fifo.lock().unwrap().pop_front();
                        if let Some(ticket) = ticket {
                            written += 1;
                            self.track.inflight.lock().unwrap().insert(pkid, (written, ticket));
                        }
                    }
                }
                WireEvent::Acked { pkid, routed } => {
                    let ticket = self.track.inflight.lock().unwrap().remove(&pkid);
                    if let Some((_, ticket)) = ticket {
                        self.track.release_one();
                        ticket.settle_one();
                        if !routed {
                            self.gate.unrouted();
                        }
                    }
                    self.track.changed.notify_waiters();
                }
                WireEvent::Refused { pkid, reason } => {
                    let ticket = self.track.inflight.lock().unwrap().remove(&pkid);
                    if let Some((_, ticket)) = ticket {
                        self.track.release_one();
                        ticket.finish(Err(Error::BusRefused(reason)));
                    }
                    self.track.changed.notify_waiters();
                }
                WireEvent::Message { topic, payload, envelope, acked } => {
                    if topic.starts_with(&self.credits_prefix) {
                        // Ours, or a report for an earlier bus on this persistent session (ignored).
                        if topic == self.credits {
                            self.gate.report(&payload);
                        }
                        continue;
                    }
                    // Counted as read whatever becomes of it below: it has left the broker.
                    if let (true, true, Some(env)) = (self.gate.is_on(), acked, &envelope) {
                        self.ledger.count(&env.src);
                    }
                    let c = &self.shared.counters;
                    let Some((exp, agent, kind)) = parse_topic(&topic) else {
                        c.not_ours.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if exp != opts.exp || ours.as_ref().is_some_and(|set| !set.contains(agent)) {
                        c.not_ours.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let mut gaps = Vec::new();
                    let inbound = match envelope {
                        None => {
                            c.foreign.fetch_add(1, Ordering::Relaxed);
                            Inbound { agent: agent.to_string(), kind, from: String::new(), msg_id: String::new(), seq: 0, ts: 0, payload }
                        }
                        Some(env) if env.is_end_mark() => {
                            let gap = receive.end_of_stream(&env, agent, kind);
                            *c.receive.lock().unwrap() = receive.counts;
                            if gap.is_some() {
                                self.shared.inbox.push(Vec::new(), gap.into_iter().collect()).await;
                            }
                            continue;
                        }
                        Some(env) => {
                            let (verdict, gap) = receive.accept(&env, agent, kind);
                            *c.receive.lock().unwrap() = receive.counts;
                            if verdict == Verdict::Duplicate {
                                continue;
                            }
                            gaps.extend(gap);
                            Inbound {
                                agent: agent.to_string(),
                                kind,
                                from: env.from,
                                msg_id: env.msg_id,
                                seq: env.seq,
                                ts: env.ts,
                                payload,
                            }
                        }
                    };
                    self.shared.inbox.push(vec![inbound], gaps).await;
                    c.delivered.fetch_add(1, Ordering::Relaxed);
                }
                WireEvent::DisconnectWritten => break,
                WireEvent::Other => {}
            }
        }
        self.track.fail_all("the connection was closed");
    }

    /// rumqttc (MQTT 5) hands back unacknowledged publishes in packet-id order, which after the
    /// ids wrapped is not the order they were sent in; resending them so would reorder a stream.
    /// Puts them in written order, ahead of the requests that never reached the wire.
    fn retransmit_in_written_order<W: Wire>(&self, saved: &mut Vec<W::Request>) {
        let inflight = self.track.inflight.lock().unwrap();
        let order = |r: &W::Request| W::retransmit_pkid(r).and_then(|pkid| inflight.get(&pkid)).map(|(n, _)| *n);
        let (mut resend, rest): (Vec<_>, Vec<_>) = std::mem::take(saved).into_iter().partition(|r| order(r).is_some());
        resend.sort_by_key(|r| order(r));
        saved.extend(resend);
        saved.extend(rest);
    }

    fn signal_ready(&mut self, result: std::result::Result<(), String>) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(result);
        }
    }
}

fn max_qos(qos: &[Qos; 3]) -> Qos {
    *qos.iter().max_by_key(|q| **q as u8).unwrap_or(&Qos::AtLeastOnce)
}

/// `mqtt://[user[:password]@]host[:port]`, `mqtts://...` (TLS), `tcp://`, `ssl://`.
fn wire_config(shared: &Shared, url: &str) -> Result<WireConfig> {
    let opts = &shared.opts;
    let bad = |why: &str| Error::InvalidArg(format!("bus url {url:?}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected mqtt://host:port"))?;
    let tls = match scheme {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => return Err(bad(&format!("unknown scheme {other:?} (mqtt, mqtts)"))),
    };
    let rest = rest.trim_end_matches('/');
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("the port is not a number"))?),
        None => (hostport, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let from_url = userinfo.map(|u| match u.split_once(':') {
        Some((user, password)) => (user.to_string(), password.to_string()),
        None => (u.to_string(), String::new()),
    });
    let credentials = match (&opts.username, from_url) {
        (Some(user), _) => Some((user.clone(), opts.password.clone().unwrap_or_default())),
        (None, from_url) => from_url,
    };
    let tls = if tls || opts.tls.is_some() { Some(tls_configuration(opts.tls.clone().unwrap_or_default())?) } else { None };
    Ok(WireConfig {
        host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
        port,
        client_id: opts.client_id.clone(),
        keep_alive: Duration::from_secs(opts.keep_alive_s.max(1) as u64),
        persistent: opts.persistent,
        session_expiry_s: opts.session_expiry_s,
        credentials,
        tls,
        // Room for the largest payload plus topic, envelope and properties.
        max_packet: opts.max_payload + 64 * 1024,
        // One more than our window: packet ids cycle through 1..=inflight in rumqttc.
        inflight: opts.inflight.saturating_add(1),
        channel_capacity: 1024,
    })
}

fn tls_configuration(t: super::TlsOptions) -> Result<rumqttc::TlsConfiguration> {
    // rustls needs a process-wide crypto provider; ring is compiled in (an Err means one is set).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &std::path::PathBuf| std::fs::read(p).map_err(|e| Error::io(p, e));
    let client_auth = match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
        (None, None) => None,
        _ => return Err(Error::InvalidArg("tls: give both cert and key, or neither".into())),
    };
    Ok(match &t.ca {
        Some(ca) => rumqttc::TlsConfiguration::Simple { ca: read(ca)?, alpn: None, client_auth },
        None if client_auth.is_none() => rumqttc::TlsConfiguration::default(),
        None => return Err(Error::InvalidArg("tls: a client certificate needs the broker's ca as well".into())),
    })
}
