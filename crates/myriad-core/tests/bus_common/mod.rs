//! Shared by the bus test binaries (bus.rs, bus_scale.rs).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use myriad_core::bus::{Bus, BusOptions, Inbound, Kind, Outbound};

pub const MOSQUITTO: &str = "mqtt://127.0.0.1:1883";

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn options(exp: &str, client: &str, agents: &[&str]) -> BusOptions {
    let mut o = BusOptions::new(exp, client);
    o.agents = agents.iter().map(|a| a.to_string()).collect();
    o
}

pub fn message(to: &str, kind: Kind, body: String) -> Outbound {
    Outbound { to: to.into(), kind, from: None, msg_id: None, payload: Bytes::from(body) }
}

/// Takes from the bus until `n` messages arrived (or fails after `secs`).
pub async fn receive(bus: &Bus, n: usize, secs: u64) -> Vec<Inbound> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(Instant::now() < deadline, "received {} of {n} messages; stats {:?}", got.len(), bus.stats());
        got.extend(bus.take(usize::MAX).messages);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got
}
