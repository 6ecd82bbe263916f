//! The registry's compact state (issue 24): what it costs per agent, and snapshots written before
//! it (a `HashMap<String, Agent>` with `VecDeque<bool>` windows) still loading to the same state.

use std::collections::{BTreeMap, BTreeSet};

use myriad_core::registry::pml::Status;
use myriad_core::registry::Agent;
use myriad_core::{ErrorCode, Registry, RegistryOptions};
use serde::Deserialize;

#[path = "fixtures/registry_history.rs"]
mod history;

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry_snapshot_v1.json")
}

/// The snapshot format, read independently of the registry's own code.
#[derive(Deserialize, Debug, PartialEq)]
struct OldSnapshot {
    version: u32,
    registry: OldRegistry,
}

#[derive(Deserialize, Debug, PartialEq)]
struct OldRegistry {
    options: RegistryOptions,
    agents: BTreeMap<String, OldAgent>,
    tasks: BTreeMap<u128, u128>,
    task_order: Vec<u128>,
    seen: BTreeSet<u128>,
    seen_order: Vec<u128>,
    digest_seed: u64,
    processed: u64,
    rejected: u64,
}

#[derive(Deserialize, Debug, PartialEq)]
struct OldAgent {
    id: String,
    specialty: String,
    capacity: u32,
    load: u32,
    status: String,
    last_seen: f64,
    ledger: OldLedger,
}

#[derive(Deserialize, Debug, PartialEq)]
struct OldLedger {
    window: usize,
    outcomes: Vec<bool>,
    successes: usize,
    response_ms_ema: Option<f64>,
    total_outcomes: u64,
}

/// Equal agents, but for the response-time EMA within a few ulps: serde_json (without its
/// `float_roundtrip` feature) may read a float back one ulp off, as it always did for snapshots.
fn assert_same(a: &Agent, b: &Agent) {
    let (ea, eb) = (a.ledger.response_ms(), b.ledger.response_ms());
    assert!(ea.is_some() == eb.is_some() && ea.zip(eb).is_none_or(|(x, y)| (x - y).abs() <= 1e-12 * x.abs()), "{a:?} vs {b:?}");
    let (mut a, mut b) = (serde_json::to_value(a).unwrap(), serde_json::to_value(b).unwrap());
    a["ledger"]["response_ms_ema"] = serde_json::Value::Null;
    b["ledger"]["response_ms_ema"] = serde_json::Value::Null;
    assert_eq!(a, b);
}

#[test]
fn a_snapshot_written_before_loads_to_the_state_a_replay_builds() {
    let (options, messages) = history::history();
    let mut replay = Registry::new(options);
    assert!(replay.process_batch(&messages).iter().all(|o| o.ok));
    let mut loaded = Registry::load(&fixture()).unwrap();
    assert_eq!(loaded.options(), options);
    assert_eq!((loaded.len(), loaded.counters()), (replay.len(), replay.counters()));
    for i in 0..7 {
        let id = format!("agent-{i}");
        assert_same(&loaded.get(&id).unwrap(), &replay.get(&id).unwrap());
    }
    assert!(loaded.get("agent-7").is_none() && replay.get("agent-7").is_none());
    let a0 = loaded.get("agent-0").unwrap();
    // Past its window of 70: 81 outcomes, the last 70 of them counted (the figures the registry
    // gave before issue 24 when it wrote the snapshot).
    assert_eq!((a0.ledger.window_len(), a0.ledger.total_outcomes()), (70, 81));
    assert_eq!(a0.trust(), 0.7361111111111112);
    assert!((a0.ledger.response_ms().unwrap() - 195.00778844528782).abs() < 1e-9);
    assert_eq!(loaded.get("agent-1").unwrap().trust(), 0.8214285714285714);
    assert_eq!(loaded.ids_by_status(Status::Busy), replay.ids_by_status(Status::Busy));
    assert_eq!(loaded.ids_by_status(Status::Offline), vec!["agent-3"]);

    // The last 40 msgIds are remembered (their digests use the snapshot's seed), older ones not.
    let n = messages.len();
    for (i, m) in messages.iter().enumerate().skip(n - 40) {
        assert!(loaded.process(m).duplicate, "message {i}");
    }
    // Task t149 is remembered with its requester, user-2: feedback on it from anyone else fails.
    let feedback = |from: &str, id: &str| {
        serde_json::json!({ "v": 1, "type": "feedback", "msgId": id, "from": from, "to": "agent-0", "ts": 1, "body": { "taskId": "t149", "success": true } })
            .to_string()
    };
    assert_eq!(loaded.process(&feedback("user-0", "f1")).error.unwrap().code, ErrorCode::PmlField);
    assert!(loaded.process(&feedback("user-2", "f2")).ok);
    assert!(!loaded.process(&messages[0]).duplicate, "the first msgId was forgotten");
}

#[test]
fn snapshots_with_impossible_agents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    let agent = good["registry"]["agents"]["agent-0"].clone();
    let long = "x".repeat(70_000);
    let mut cases = Vec::new();
    for (key, id) in [("agent-0", "agent-9"), (long.as_str(), long.as_str())] {
        let mut bad = good.clone();
        let mut a = agent.clone();
        a["id"] = id.into();
        bad["registry"]["agents"][key] = a;
        cases.push(bad);
    }
    for (i, bad) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.json"));
        std::fs::write(&path, bad.to_string()).unwrap();
        assert_eq!(Registry::load(&path).err().unwrap().code(), ErrorCode::CorruptSnapshot, "case {i}");
    }
}

#[test]
fn snapshots_are_written_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.json");
    Registry::load(&fixture()).unwrap().save(&path).unwrap();
    let read = |p: &std::path::Path| serde_json::from_str::<OldSnapshot>(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert_eq!(read(&path), read(&fixture()));
}

#[test]
fn the_registry_costs_under_150_bytes_per_agent_besides_specialty_texts() {
    // 100,000 agents, window 50, each registered by one message (so one msgId digest each), then
    // given 60 outcomes (the window full), specialty texts of ~60 characters from 1,000.
    let n = 100_000;
    let mut reg = Registry::new(RegistryOptions { window: 50, ..Default::default() });
    let texts: Vec<String> = (0..1000).map(|i| format!("specialist #{i:04} in tax law, income returns and deductions.")).collect();
    for at in (0..n).step_by(10_000) {
        let batch: Vec<String> = (at..at + 10_000)
            .map(|i| {
                format!(
                    r#"{{"v":1,"type":"register","msgId":"r-agent-{i:06}","from":"agent-{i:06}","ts":0,"body":{{"specialty":"{}"}}}}"#,
                    texts[i % 1000]
                )
            })
            .collect();
        assert!(reg.process_batch(&batch).iter().all(|o| o.ok));
    }
    let registered = reg.memory();
    let mut outcomes = Vec::new();
    for round in 0..60 {
        outcomes.clear();
        for i in (round * 7919..round * 7919 + n).map(|i| i % n).step_by(50) {
            outcomes.push(format!(
                r#"{{"v":1,"type":"feedback","msgId":"o-{round}-{i}","from":"runtime","to":"agent-{i:06}","ts":1,"body":{{"success":{}}}}}"#,
                i % 3 == 0
            ));
        }
        reg.process_batch(&outcomes);
    }
    let m = reg.memory();
    assert_eq!(m.agents, registered.agents, "outcomes within a window of 50 allocate nothing");
    let per_agent = (m.agents + m.ids + registered.dedupe + m.tasks) as f64 / n as f64;
    // Per agent: a 64-byte record, an 8-byte span and 12 bytes of id, a 16-byte digest: 100.
    // Two hash tables of 4-byte entries and a control byte, at a load factor of at least 7/16:
    // at most 2 x 11.5, here 2 x 6.6 (131,072 buckets). Each chunked store may hold one partly
    // used chunk (records 1 MiB, spans 512 KiB, digests 1 MiB, ids 64 KiB): at most 26 bytes at
    // 100,000 agents. Hence at most 149 bytes; 150 is the bound.
    assert!(per_agent <= 150.0, "{per_agent:.1} bytes per agent: {m:?}");
    // The 1,000 texts are kept once each, whatever the number of agents holding them.
    assert!(m.specialties < 1000 * (60 + 24) + 64 * 1024, "{m:?}");
    println!("{per_agent:.1} bytes per agent besides specialty texts ({registered:?} once registered)");
}
