//! The bus end to end: the local router, the embedded rumqttd broker, and the Mosquitto on
//! 127.0.0.1:1883 (started by .ci/run where absent), under MQTT 5 and 3.1.1.

use std::path::Path;
use std::time::{Duration, Instant};

use myriad_core::bus::{Bus, BusOptions, Inbound, Kind, Outbound, Protocol, Qos, SubscribeMode, TlsOptions};
use myriad_core::ErrorCode;

mod bus_common;
use bus_common::{message, options, receive, unique, MOSQUITTO};

/// Sends `count` messages round-robin over agents a0..a9 of `receiver` and checks they all
/// arrive once, in order per agent, with their envelope.
async fn round_trip(sender: &Bus, receiver: &Bus, count: usize) {
    let batch: Vec<Outbound> = (0..count).map(|i| message(&format!("a{}", i % 10), Kind::AgentChat, format!("m{i}"))).collect();
    sender.publish(batch).await.unwrap();
    let got = receive(receiver, count, 20).await;
    assert_eq!(got.len(), count);
    for agent in 0..10 {
        let name = format!("a{agent}");
        let mine: Vec<&Inbound> = got.iter().filter(|m| m.agent == name).collect();
        let seqs: Vec<u64> = mine.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=mine.len() as u64).collect::<Vec<_>>(), "per-agent order for {name}");
    }
    let first = got.iter().find(|m| m.payload == "m0").expect("m0 delivered");
    assert_eq!(first.kind, Kind::AgentChat);
    assert_eq!(first.from, sender.options().client_id);
    assert!(!first.msg_id.is_empty() && first.ts > 0);
    assert_eq!(receiver.stats().receive.gaps, 0);
}

fn agents10() -> Vec<String> {
    (0..10).map(|i| format!("a{i}")).collect()
}

#[tokio::test]
async fn local_transport_delivers_in_order_without_a_broker() {
    let exp = unique("local");
    let mut r = options(&exp, "receiver", &[]);
    r.agents = agents10();
    r.local = true;
    let receiver = Bus::connect(r).await.unwrap();
    let mut s = options(&exp, "sender", &[]);
    s.local = true;
    let sender = Bus::connect(s).await.unwrap();
    round_trip(&sender, &receiver, 1000).await;
    // A message to an agent nobody serves goes nowhere (no subscriber, as on a broker).
    sender.publish(vec![message("nobody", Kind::UserChat, "x".into())]).await.unwrap();
    assert!(receiver.take(usize::MAX).messages.is_empty());
}

async fn broker_round_trip(url: Option<&str>, protocol: Protocol, mode: SubscribeMode) {
    let exp = unique("rt");
    let mut r = options(&exp, &unique("recv"), &[]);
    r.agents = agents10();
    r.url = url.map(String::from);
    r.protocol = protocol;
    r.subscribe = mode;
    let receiver = Bus::connect(r).await.unwrap();
    let mut s = options(&exp, &unique("send"), &[]);
    s.url = url.map(String::from);
    s.protocol = protocol;
    let sender = Bus::connect(s).await.unwrap();
    round_trip(&sender, &receiver, 2000).await;
    // QoS 2 (user-survey) and QoS 0 too.
    let mut s0 = options(&exp, &unique("send0"), &[]);
    s0.url = url.map(String::from);
    s0.protocol = protocol;
    s0.qos = [Qos::AtMostOnce, Qos::AtMostOnce, Qos::ExactlyOnce];
    let sender0 = Bus::connect(s0).await.unwrap();
    sender0.publish(vec![message("a1", Kind::UserSurvey, "survey".into()), message("a2", Kind::UserChat, "chat".into())]).await.unwrap();
    let got = receive(&receiver, 2, 10).await;
    let mut kinds: Vec<Kind> = got.iter().map(|m| m.kind).collect();
    kinds.sort_by_key(|k| *k as u8);
    assert_eq!(kinds, [Kind::UserChat, Kind::UserSurvey]);
    sender0.close().await.unwrap();
    sender.close().await.unwrap();
    receiver.close().await.unwrap();
    assert_eq!(sender.stats().published, 2000);
    assert_eq!(receiver.stats().receive.duplicates, 0);
}

#[tokio::test]
async fn embedded_broker_mqtt5() {
    broker_round_trip(None, Protocol::V5, SubscribeMode::Agents).await;
}

#[tokio::test]
async fn embedded_broker_mqtt311() {
    broker_round_trip(None, Protocol::V311, SubscribeMode::Agents).await;
}

#[tokio::test]
async fn mosquitto_mqtt5_per_agent_subscriptions() {
    broker_round_trip(Some(MOSQUITTO), Protocol::V5, SubscribeMode::Agents).await;
}

#[tokio::test]
async fn mosquitto_mqtt311_experiment_wildcard() {
    broker_round_trip(Some(MOSQUITTO), Protocol::V311, SubscribeMode::Experiment).await;
}

#[tokio::test]
async fn bad_input_gets_typed_errors() {
    let exp = unique("bad");
    let mut o = options(&exp, "c", &[]);
    o.local = true;
    o.max_payload = 16;
    let bus = Bus::connect(o).await.unwrap();
    let code = |r: myriad_core::Result<()>| r.unwrap_err().code();
    assert_eq!(code(bus.publish(vec![message("a/b", Kind::AgentChat, "x".into())]).await), ErrorCode::InvalidTopic);
    assert_eq!(code(bus.publish(vec![message("a#", Kind::AgentChat, "x".into())]).await), ErrorCode::InvalidTopic);
    assert_eq!(code(bus.publish(vec![message("a", Kind::AgentChat, "x".repeat(17))]).await), ErrorCode::PayloadTooLarge);
    for id in ["", "tab\there", "line\nbreak"] {
        let with_id = Outbound { msg_id: Some(id.into()), ..message("a", Kind::AgentChat, "x".into()) };
        assert_eq!(code(bus.publish(vec![with_id]).await), ErrorCode::InvalidArg, "{id:?}");
    }
    bus.close().await.unwrap();
    assert_eq!(code(bus.publish(vec![message("a", Kind::AgentChat, "x".into())]).await), ErrorCode::BusClosed);

    let e = Bus::connect(options("exp/1", "c", &[])).await.err().unwrap();
    assert_eq!(e.code(), ErrorCode::InvalidTopic);
    let mut unreachable = options(&exp, "c", &[]);
    unreachable.url = Some("mqtt://127.0.0.1:1".into());
    assert_eq!(Bus::connect(unreachable).await.err().unwrap().code(), ErrorCode::BusConnect);
    let mut bad_url = options(&exp, "c", &[]);
    bad_url.url = Some("http://x".into());
    assert_eq!(Bus::connect(bad_url).await.err().unwrap().code(), ErrorCode::InvalidArg);
}

/// A Mosquitto of this test's own on a free port, with persistence in a temporary directory.
struct OwnMosquitto {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl OwnMosquitto {
    async fn start(max_inflight: u16) -> OwnMosquitto {
        Self::start_configured(|_| "allow_anonymous true\n".into(), max_inflight).await
    }

    /// `listener` writes the lines that follow the listener (TLS, authentication), given the
    /// broker's directory, where it may put files first.
    async fn start_with(listener: impl FnOnce(&Path) -> String) -> OwnMosquitto {
        Self::start_configured(listener, 1000).await
    }

    /// `max_inflight` is also the receive maximum Mosquitto announces to MQTT 5 clients.
    async fn start_configured(listener: impl FnOnce(&Path) -> String, max_inflight: u16) -> OwnMosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        // Mosquitto started as root drops to the `mosquitto` user: it must be able to write here.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let conf = format!(
            "per_listener_settings false\nlistener {port} 127.0.0.1\n{}persistence true\npersistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages {max_inflight}\n",
            listener(dir.path()),
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        let mut m = OwnMosquitto { port, dir, child: None };
        m.spawn().await;
        m
    }

    async fn spawn(&mut self) {
        let child = tokio::process::Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto must be installed (apt install mosquitto)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {}", self.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM (Mosquitto saves its sessions and queues), wait, start again.
    async fn restart(&mut self) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().unwrap() as i32;
        std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
        child.wait().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.spawn().await;
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    // MQTT 5 twice: with room for our whole window, and with Mosquitto's default receive maximum
    // of 20, below it, where the window shrinks to fit and rumqttc's packet ids cycle through
    // only 20 while the unacknowledged messages are sent again after the restart.
    for (protocol, max_inflight) in [(Protocol::V311, 1000), (Protocol::V5, 1000), (Protocol::V5, 20)] {
        let mut broker = OwnMosquitto::start(max_inflight).await;
        let case = format!("{protocol:?}, max_inflight_messages {max_inflight}");
        let exp = unique("restart");
        let mut r = options(&exp, &unique("recv"), &[]);
        r.agents = agents10();
        r.url = Some(broker.url());
        r.protocol = protocol;
        let receiver = Bus::connect(r).await.unwrap();
        let mut s = options(&exp, &unique("send"), &[]);
        s.url = Some(broker.url());
        s.protocol = protocol;
        let sender = Bus::connect(s).await.unwrap();

        const TOTAL: usize = 20_000;
        const BATCH: usize = 250;
        let publisher = tokio::spawn({
            let sender = sender.clone();
            async move {
                for b in 0..TOTAL / BATCH {
                    let batch =
                        (b * BATCH..(b + 1) * BATCH).map(|i| message(&format!("a{}", i % 10), Kind::AgentChat, format!("m{i}"))).collect();
                    sender.publish(batch).await.expect("every batch is accepted, across the restart");
                }
            }
        });
        // Restart once a quarter of the messages went through.
        let t0 = Instant::now();
        let mut peak_inflight = 0;
        while sender.stats().published < (TOTAL / 4) as u64 {
            assert!(t0.elapsed() < Duration::from_secs(20), "{case}: stalled before the restart: {:?}", sender.stats());
            peak_inflight = peak_inflight.max(sender.stats().inflight);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(peak_inflight <= max_inflight as u64, "{case}: {peak_inflight} unacknowledged at once, over the broker's limit");
        eprintln!("{case}: restarting (at most {peak_inflight} unacknowledged seen)");
        broker.restart().await;
        eprintln!("{case}: restarted");
        if tokio::time::timeout(Duration::from_secs(30), publisher).await.is_err() {
            panic!("{case}: publishing stalled after the restart: sender {:?} receiver {:?}", sender.stats(), receiver.stats());
        }
        let mut gaps = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut got = Vec::new();
        while got.len() < TOTAL && Instant::now() < deadline {
            let t = receiver.take(usize::MAX);
            got.extend(t.messages);
            gaps.extend(t.gaps);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!("{case}: gaps {:?} stats {:?}", gaps.iter().take(3).collect::<Vec<_>>(), receiver.stats());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let late = receiver.take(usize::MAX).messages;
        let mut bodies: Vec<String> = got.iter().chain(&late).map(|m| String::from_utf8_lossy(&m.payload).into_owned()).collect();
        bodies.sort();
        bodies.dedup();
        assert_eq!(got.len() + late.len(), TOTAL, "{case}: exactly one delivery per message");
        assert_eq!(bodies.len(), TOTAL, "{case}: every message arrived");
        assert!(sender.stats().reconnects >= 1 && receiver.stats().reconnects >= 1, "{case}: both reconnected");
        assert_eq!(receiver.stats().receive.gaps, 0, "{case}: QoS 1 with a persistent session leaves no gap");
        eprintln!("{case}: closing");
        tokio::time::timeout(Duration::from_secs(10), sender.close()).await.expect("sender closes").unwrap();
        tokio::time::timeout(Duration::from_secs(10), receiver.close()).await.expect("receiver closes").unwrap();
    }
}

/// A 3.1.1 sender's envelope (a header in the payload) is read by an MQTT 5 receiver too.
#[tokio::test]
async fn an_mqtt5_receiver_reads_a_311_senders_envelope() {
    let exp = unique("mixed");
    let mut r = options(&exp, &unique("recv"), &[]);
    r.agents = agents10();
    r.url = Some(MOSQUITTO.into());
    let receiver = Bus::connect(r).await.unwrap();
    let mut s = options(&exp, &unique("send"), &[]);
    s.url = Some(MOSQUITTO.into());
    s.protocol = Protocol::V311;
    let sender = Bus::connect(s).await.unwrap();
    round_trip(&sender, &receiver, 500).await;
    assert_eq!(receiver.stats().foreign, 0);
    sender.close().await.unwrap();
    receiver.close().await.unwrap();
}

/// Takes messages and gaps until nothing new came for `quiet`.
/// A bus on Mosquitto over MQTT 3.1.1 (20 in flight to it and 1,000 queued, by the defaults) with
/// an inbox of 100, so that it falls behind as soon as its reader does.
fn mosquitto_311(exp: &str, name: &str, agents: &[&str]) -> BusOptions {
    let mut o = options(exp, &unique(name), agents);
    o.url = Some(MOSQUITTO.into());
    o.protocol = Protocol::V311;
    o.inbox_capacity = 100;
    o
}

async fn take_until_quiet(bus: &Bus, quiet: Duration) -> (Vec<Inbound>, Vec<myriad_core::bus::Gap>) {
    let (mut messages, mut gaps) = (Vec::new(), Vec::new());
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        let taken = bus.take(usize::MAX);
        if !taken.messages.is_empty() || !taken.gaps.is_empty() {
            last = Instant::now();
        }
        messages.extend(taken.messages);
        gaps.extend(taken.gaps);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (messages, gaps)
}

/// Mosquitto's defaults keep 20 messages in flight to a 3.1.1 client and queue 1,000 more; past
/// that it drops. A receiver that reads nothing while 5,000 are sent by a sender without credits
/// so loses the end of the stream, which no later message reveals; the end mark the sender's
/// close() sends does.
#[tokio::test]
async fn messages_lost_at_the_end_of_a_stream_are_reported_once_the_sender_closes() {
    let exp = unique("tail");
    let receiver = Bus::connect(mosquitto_311(&exp, "recv", &["a1"])).await.unwrap();
    // 3.1.1 both: the envelope travels in the payload, which a 3.1.1 receiver gets.
    let mut s = mosquitto_311(&exp, "send", &[]);
    s.end_mark_idle_ms = 0; // marks at close only (the next test has the quiet ones)
    s.credit_window = Some(0); // no flow control across the broker, so that it drops (see the credit test)
    let sender = Bus::connect(s).await.unwrap();
    let n = 5000u64;
    sender.publish((0..n).map(|i| message("a1", Kind::AgentChat, format!("m{i}"))).collect()).await.unwrap();
    let (got, _) = take_until_quiet(&receiver, Duration::from_millis(500)).await;
    let seen = got.len() as u64;
    // Under load the receiver may read a little while the sender still sends, so a stretch in the
    // middle can be lost too: that one a later message reveals. The end no message reveals.
    let last = got.last().map_or(0, |m| m.seq);
    assert!(last < n, "the end of the stream arrived ({seen} of {n}): the test needs Mosquitto's default queue limit");
    let before = receiver.stats().receive;
    assert_eq!(seen + before.missing, last, "everything up to the last arrival is delivered or reported");

    sender.drain().await.unwrap();
    assert!(take_until_quiet(&receiver, Duration::from_millis(300)).await.1.is_empty(), "drain sends no marks");
    let client_id = sender.options().client_id.clone();
    sender.close().await.unwrap();
    let (more, gaps) = take_until_quiet(&receiver, Duration::from_millis(500)).await;
    assert!(more.is_empty(), "the end mark is not delivered as a message");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!((gaps[0].agent.as_str(), gaps[0].expected, gaps[0].got), ("a1", last + 1, n + 1));
    assert_eq!(gaps[0].from, client_id);
    let after = receiver.stats().receive;
    assert_eq!((after.gaps, seen + after.missing), (before.gaps + 1, n), "every message delivered or reported");
    receiver.close().await.unwrap();
}

/// Credits: the receiver behind Mosquitto's default queue limit again, now reading slowly (100
/// messages every 50 ms while 5,000 are sent at once). With credits the sender is held to what
/// the receiver reports having read and nothing is lost; without them the same run loses
/// messages to the broker (which shows that the test still has the queue limit to beat).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_311_receiver_holds_its_sender_back_and_loses_nothing() {
    for credit_window in [512, 0] {
        let exp = unique("credit");
        let receiver = Bus::connect(mosquitto_311(&exp, "recv", &["a1"])).await.unwrap();
        let mut s = mosquitto_311(&exp, "send", &[]);
        s.credit_window = Some(credit_window);
        let sender = Bus::connect(s).await.unwrap();
        let n = 5000;
        let started = Instant::now();
        let sending = {
            let sender = sender.clone();
            tokio::spawn(async move {
                sender.publish((0..n).map(|i| message("a1", Kind::AgentChat, format!("m{i}"))).collect()).await.unwrap();
                started.elapsed()
            })
        };
        let mut got = Vec::new();
        let mut last = Instant::now();
        while got.len() < n && last.elapsed() < Duration::from_millis(1500) {
            let taken = receiver.take(100).messages;
            if !taken.is_empty() {
                last = Instant::now();
            }
            got.extend(taken);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sent_in = sending.await.unwrap();
        if credit_window > 0 {
            assert_eq!(got.len(), n, "stats {:?}", receiver.stats());
            assert!(got.iter().enumerate().all(|(i, m)| m.seq == i as u64 + 1), "in order, once each");
            assert_eq!(receiver.stats().receive.gaps, 0);
            assert_eq!(sender.stats().credit_released, 0, "held by credits alone, never let go");
            // 5,000 read at 2,000 a second: the sender cannot have been done much sooner.
            assert!(sent_in > Duration::from_millis(1500), "the sender was not held: done in {sent_in:?}");
        } else {
            assert!(got.len() < n, "all {n} arrived without credits: the test needs Mosquitto's default queue limit");
        }
        sender.close().await.unwrap();
        receiver.close().await.unwrap();
    }
}

/// Two buses that send to each other at once, each held by the other's credits: the reports go
/// out beside the send lock that a held publisher keeps, so neither waits for the other forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_buses_held_by_each_others_credits_both_finish() {
    let exp = unique("mutual");
    let connect = |name: &'static str| {
        let mut o = mosquitto_311(&exp, name, &[name]);
        o.credit_window = Some(64);
        Bus::connect(o)
    };
    let (a, b) = (connect("a").await.unwrap(), connect("b").await.unwrap());
    let n = 3000;
    let send = |from: &std::sync::Arc<Bus>, to: &'static str| {
        let from = from.clone();
        tokio::spawn(async move { from.publish((0..n).map(|i| message(to, Kind::AgentChat, format!("m{i}"))).collect()).await })
    };
    let (to_b, to_a) = (send(&a, "b"), send(&b, "a"));
    let (mut got_a, mut got_b) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (got_a < n || got_b < n) && Instant::now() < deadline {
        got_a += a.take(100).messages.len();
        got_b += b.take(100).messages.len();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    to_b.await.unwrap().unwrap();
    to_a.await.unwrap().unwrap();
    assert_eq!((got_a, got_b), (n, n));
    assert_eq!((a.stats().receive.gaps, b.stats().receive.gaps), (0, 0));
    assert_eq!((a.stats().credit_released, b.stats().credit_released), (0, 0), "held by credits alone");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A sender that stays open marks a stream's end once the stream has been quiet for
/// `end_mark_idle_ms`, and only once. The loss here is certain, whatever the load: the messages go
/// out before the receiver subscribes, so the broker has no one to give them to.
#[tokio::test]
async fn messages_lost_at_the_end_of_a_quiet_stream_are_reported_while_the_sender_stays_open() {
    let exp = unique("quiet");
    let mut s = options(&exp, &unique("send"), &[]);
    s.url = Some(MOSQUITTO.into());
    // Time enough for the receiver to subscribe before the mark goes out.
    s.end_mark_idle_ms = 2000;
    let sender = Bus::connect(s).await.unwrap();
    let n = 10u64;
    sender.publish((0..n).map(|i| message("a1", Kind::AgentChat, format!("m{i}"))).collect()).await.unwrap();
    let mut r = options(&exp, &unique("recv"), &["a1"]);
    r.url = Some(MOSQUITTO.into());
    let receiver = Bus::connect(r).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let gaps = loop {
        let taken = receiver.take(usize::MAX);
        assert!(taken.messages.is_empty(), "the messages went out before anyone subscribed");
        if !taken.gaps.is_empty() {
            break taken.gaps;
        }
        assert!(Instant::now() < deadline, "no end mark came; stats {:?}", receiver.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!((gaps[0].agent.as_str(), gaps[0].expected, gaps[0].got), ("a1", 1, n + 1));
    assert_eq!(gaps[0].from, sender.options().client_id);
    // Quiet rounds after the mark send nothing more, and the stream goes on where it was.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(receiver.take(usize::MAX).gaps.is_empty());
    sender.publish(vec![message("a1", Kind::AgentChat, "after".into())]).await.unwrap();
    let after = receive(&receiver, 1, 10).await;
    assert_eq!((after[0].seq, receiver.stats().receive.gaps, receiver.stats().receive.missing), (n + 1, 1, n));
    sender.close().await.unwrap();
    receiver.close().await.unwrap();
}

#[tokio::test]
async fn interop_with_mosquitto_clients_both_ways() {
    let exp = unique("interop");
    let mut o = options(&exp, &unique("bus"), &["a1", "a2"]);
    o.url = Some(MOSQUITTO.into());
    let bus = Bus::connect(o).await.unwrap();

    // mosquitto_sub receives what the bus publishes, with the envelope as the MQTT 5 user property
    // `myriad`.
    let sub = tokio::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", "1883", "-V", "5", "-q", "1", "-C", "3", "-W", "10", "-F", "%t|%p|%P"])
        .args(["-t", &format!("exps/{exp}/agents/+/+")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (apt install mosquitto-clients)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let batch = (0..3).map(|i| message("a1", Kind::AgentChat, format!("hello {i}"))).collect();
    bus.publish(batch).await.unwrap();
    let out = sub.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let records: Vec<&str> = text.lines().collect();
    assert_eq!(records.len(), 3, "mosquitto_sub printed: {text}");
    let prefix = format!("exps/{exp}/agents/a1/agent-chat|hello 0|myriad:");
    assert!(records[0].starts_with(&prefix), "{}", records[0]);
    // msgId, seq, from, src, ts: the third message is the sender's third to a1.
    let fields: Vec<&str> = records[2].split_once("myriad:").unwrap().1.split('/').collect();
    assert_eq!((fields.len(), fields[1]), (5, "3"), "user property: {}", records[2]);

    // The bus receives what mosquitto_pub publishes: no envelope, so empty fields, still delivered.
    let status = tokio::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", "1883", "-q", "1", "-m", "from the outside"])
        .args(["-t", &format!("exps/{exp}/agents/a2/user-chat")])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    // The bus serves a1 too, so its own three messages come back first.
    let got: Vec<Inbound> = receive(&bus, 4, 10).await.into_iter().filter(|m| m.kind == Kind::UserChat).collect();
    assert_eq!((got[0].agent.as_str(), got[0].kind, &got[0].payload[..]), ("a2", Kind::UserChat, &b"from the outside"[..]));
    assert_eq!((got[0].from.as_str(), got[0].msg_id.as_str(), got[0].seq), ("", "", 0));
    assert_eq!(bus.stats().foreign, 1);
    bus.close().await.unwrap();
}

/// Runs `program args` in `dir`, failing the test with its stderr if it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) {
    let out = std::process::Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a broker certificate for 127.0.0.1 made with openssl, and a password file for `alice`.
fn tls_and_password_files(dir: &Path) -> String {
    run_in(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=myriad test CA",
        ],
    );
    run_in(
        dir,
        "openssl",
        &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
    );
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run_in(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
    );
    run_in(dir, "mosquitto_passwd", &["-c", "-b", "passwd", "alice", "s3cret"]);
    for f in ["ca.pem", "server.pem", "server.key", "passwd"] {
        std::fs::set_permissions(dir.join(f), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    let d = dir.display();
    format!("cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nallow_anonymous false\npassword_file {d}/passwd\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_password_against_mosquitto() {
    let broker = OwnMosquitto::start_with(tls_and_password_files).await;
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let ca = broker.dir.path().join("ca.pem");
    let secure = |client: &str, password: &str, ca: Option<&Path>| {
        let mut o = options("tls", &unique(client), &[]);
        o.url = Some(url.clone());
        o.username = Some("alice".into());
        o.password = Some(password.into());
        o.tls = Some(TlsOptions { ca: ca.map(Path::to_path_buf), cert: None, key: None });
        o.connect_timeout_ms = 5000;
        o
    };
    for protocol in [Protocol::V5, Protocol::V311] {
        let mut r = secure("tls-recv", "s3cret", Some(&ca));
        r.agents = agents10();
        r.protocol = protocol;
        let receiver = Bus::connect(r).await.unwrap();
        let mut s = secure("tls-send", "s3cret", Some(&ca));
        s.protocol = protocol;
        let sender = Bus::connect(s).await.unwrap();
        round_trip(&sender, &receiver, 500).await;
        sender.close().await.unwrap();
        receiver.close().await.unwrap();
    }
    // A wrong password, a broker certificate nobody vouched for, and plain MQTT to a TLS port.
    let refused = Bus::connect(secure("tls-bad-pass", "wrong", Some(&ca))).await.err().expect("a wrong password must be refused");
    assert_eq!(refused.code(), ErrorCode::BusConnect, "{refused}");
    let untrusted = Bus::connect(secure("tls-no-ca", "s3cret", None)).await.err().expect("an unknown CA must be refused");
    assert_eq!(untrusted.code(), ErrorCode::BusConnect, "{untrusted}");
    let mut plain = secure("tls-plain", "s3cret", None);
    plain.tls = None;
    plain.url = Some(format!("mqtt://127.0.0.1:{}", broker.port));
    let plain = Bus::connect(plain).await.err().expect("plain MQTT to a TLS listener must fail");
    assert_eq!(plain.code(), ErrorCode::BusConnect, "{plain}");
}

/// An MQTT 5 broker that refuses a publish (here Mosquitto's ACL: PUBACK "not authorized") fails
/// the batch with that reason instead of reporting it delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_the_broker_refuses_rejects_the_batch() {
    let broker = OwnMosquitto::start_with(|dir| {
        run_in(dir, "mosquitto_passwd", &["-c", "-b", "passwd", "alice", "s3cret"]);
        std::fs::write(dir.join("acl"), "user alice\ntopic readwrite exps/acl/agents/allowed/#\n").unwrap();
        for f in ["passwd", "acl"] {
            std::fs::set_permissions(dir.join(f), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        }
        format!("allow_anonymous false\npassword_file {0}/passwd\nacl_file {0}/acl\n", dir.display())
    })
    .await;
    let mut o = options("acl", &unique("acl-send"), &[]);
    o.url = Some(broker.url());
    o.username = Some("alice".into());
    o.password = Some("s3cret".into());
    let sender = Bus::connect(o).await.unwrap();
    sender.publish(vec![message("allowed", Kind::AgentChat, "ok".into())]).await.unwrap();
    let refused = sender.publish(vec![message("forbidden", Kind::AgentChat, "no".into())]).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::BusRefused, "{refused}");
    assert!(refused.to_string().contains("NotAuthorized"), "{refused}");
    sender.close().await.unwrap();
}
