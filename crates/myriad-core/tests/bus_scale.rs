//! One group of 100,000 agents on every transport. A binary of its own: its 100,000 filters stay
//! in the embedded broker (rumqttd keeps them after the session ends), and the embedded broker is
//! one per process, so the other bus tests get a fresh one.

use std::time::Instant;

use myriad_core::bus::{Bus, Kind, Outbound, SubscribeMode};

mod bus_common;
use bus_common::{message, options, receive, unique, MOSQUITTO};

/// One group of 100,000 agents, both subscription modes, on Mosquitto, the embedded broker and the
/// local router: every agent is reachable (a sample spread over the id range, plus the last).
/// rumqttd matches each topic it has not seen before against every filter it holds, about 50 ms per
/// new topic with 100,000 filters, so its sample is 200 agents rather than 2,000 (README: "Scale").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_100_000_agents_in_either_subscription_mode() {
    const AGENTS: usize = 100_000;
    let ids: Vec<String> = (0..AGENTS).map(|i| format!("agent-{i:06}")).collect();
    for (url, local, samples) in [(Some(MOSQUITTO), false, 2000), (None, false, 200), (None, true, 2000)] {
        let sample: Vec<usize> = (0..samples).map(|i| i * (AGENTS / samples) + 7).chain([AGENTS - 1]).collect();
        for mode in [SubscribeMode::Agents, SubscribeMode::Experiment] {
            let exp = unique("big");
            let mut r = options(&exp, &unique("big-recv"), &[]);
            r.agents = ids.clone();
            r.url = url.map(String::from);
            r.local = local;
            r.subscribe = mode;
            r.persistent = false;
            r.connect_timeout_ms = 60_000;
            let t0 = Instant::now();
            let receiver = Bus::connect(r).await.unwrap();
            let subscribed = t0.elapsed();
            let mut s = options(&exp, &unique("big-send"), &[]);
            s.url = url.map(String::from);
            s.local = local;
            s.persistent = false;
            let sender = Bus::connect(s).await.unwrap();
            // Outside the group: not delivered (wildcard mode drops it as not ours).
            let batch: Vec<Outbound> = sample
                .iter()
                .map(|&i| message(&ids[i], Kind::AgentChat, format!("{i}")))
                .chain([message("stranger", Kind::AgentChat, "x".into())])
                .collect();
            sender.publish(batch).await.unwrap();
            let got = receive(&receiver, sample.len(), 30).await;
            let mut agents: Vec<&str> = got.iter().map(|m| m.agent.as_str()).collect();
            agents.sort();
            let mut expected: Vec<&str> = sample.iter().map(|&i| ids[i].as_str()).collect();
            expected.sort();
            assert_eq!(agents, expected, "{url:?} local={local} {mode:?}");
            let delivered = t0.elapsed();
            sender.close().await.unwrap();
            receiver.close().await.unwrap();
            eprintln!(
                "100,000 agents, {url:?} local={local} {mode:?}: subscribed in {subscribed:?}, delivered by {delivered:?}, closed by {:?}",
                t0.elapsed()
            );
        }
    }
}
