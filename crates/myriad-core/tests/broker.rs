//! The embedded broker outlives its clients' timing. Its own test binary (so its own broker): a
//! broker whose router died would fail every other bus test in the process, and this test should
//! name the cause.

use std::time::{Duration, Instant};

use myriad_core::bus::{embedded_broker_url, Protocol};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

fn client(port: u16, id: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(options, 10_000)
}

/// Polls until the event `wanted` picks out arrives; fails after `secs`.
async fn poll_until(events: &mut EventLoop, secs: u64, wanted: impl Fn(&Event) -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            let event = events.poll().await.expect("connection to the embedded broker");
            if wanted(&event) {
                return;
            }
        }
    });
    waited.await.expect("the awaited event");
}

/// Upstream rumqttd 0.20 panicked in its router (`Scheduler::reschedule` unwrapping a removed
/// connection) when a subscriber disconnected while the router was flooding it: the subscriber's
/// link, paused as busy, woke the router after the router had already removed the connection.
/// The router thread died, and with it the broker for the rest of the process. This provokes that
/// order many times, then checks the broker still routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_survives_subscribers_that_leave_while_it_floods_them() {
    let url = embedded_broker_url(Protocol::V311).unwrap();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();

    // One publisher floods a topic for the whole test, QoS 0 (nothing throttles it).
    let (publisher, mut publisher_events) = client(port, "flooder");
    let payload = vec![b'x'; 200];
    let flood = tokio::spawn(async move {
        let mut sent = 0u64;
        loop {
            // Queue a burst, then let the event loop write it.
            while publisher.try_publish("flood/t", QoS::AtMostOnce, false, payload.clone()).is_ok() {
                sent += 1;
            }
            for _ in 0..1000 {
                if publisher_events.poll().await.is_err() {
                    return sent;
                }
            }
        }
    });

    // Subscribers that read a while, stall (the router fills their queue and pauses them as busy),
    // then leave with DISCONNECT while reading again (so their links wake the router once more).
    let rounds = 60;
    let mut delivered = 0u64;
    for round in 0..rounds {
        let (subscriber, mut events) = client(port, &format!("leaver-{round}"));
        subscriber.subscribe("flood/#", QoS::AtMostOnce).await.unwrap();
        poll_until(&mut events, 10, |e| matches!(e, Event::Incoming(Packet::SubAck(_)))).await;
        poll_until(&mut events, 10, |e| matches!(e, Event::Incoming(Packet::Publish(_)))).await;
        tokio::time::sleep(Duration::from_millis(5 + (round % 7) as u64 * 5)).await;
        subscriber.disconnect().await.unwrap();
        let stop = Instant::now() + Duration::from_millis(50);
        while Instant::now() < stop {
            match tokio::time::timeout(Duration::from_millis(50), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::Publish(_)))) => delivered += 1,
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(_)) => break, // the connection is closed: the disconnect went out
            }
        }
    }
    assert!(delivered > 0, "the subscribers never read during their DISCONNECT: the test provoked nothing");

    // The broker still routes: a fresh pair round-trips a message.
    let (listener, mut listener_events) = client(port, "after-listener");
    listener.subscribe("after/t", QoS::AtLeastOnce).await.unwrap();
    poll_until(&mut listener_events, 10, |e| matches!(e, Event::Incoming(Packet::SubAck(_)))).await;
    let (speaker, mut speaker_events) = client(port, "after-speaker");
    speaker.publish("after/t", QoS::AtLeastOnce, false, "still here").await.unwrap();
    let speaking =
        tokio::spawn(async move { poll_until(&mut speaker_events, 10, |e| matches!(e, Event::Incoming(Packet::PubAck(_)))).await });
    poll_until(&mut listener_events, 10, |e| matches!(e, Event::Incoming(Packet::Publish(p)) if p.payload.as_ref() == b"still here")).await;
    speaking.await.unwrap();
    flood.abort();
}
