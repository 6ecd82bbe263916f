//! The registry driven by PML messages: lifecycle, trust, idempotency, per-message rejection,
//! snapshots, and a property-based fuzz of the parser (plus a small committed corpus).

use myriad_core::registry::pml::{self, Status};
use myriad_core::{ErrorCode, Registry, RegistryOptions};
use proptest::prelude::*;

fn msg(kind: &str, id: &str, from: &str, to: Option<&str>, body: serde_json::Value) -> String {
    let mut m = serde_json::json!({ "v": 1, "type": kind, "msgId": id, "from": from, "ts": 1_700_000_000_000u64, "body": body });
    if let Some(to) = to {
        m["to"] = to.into();
    }
    m.to_string()
}

fn register(id: &str, agent: &str, specialty: &str) -> String {
    msg("register", id, agent, None, serde_json::json!({ "specialty": specialty, "capacity": 2 }))
}

#[test]
fn lifecycle_from_register_to_deregister() {
    let mut reg = Registry::new(RegistryOptions::default());
    let batch = vec![
        register("m1", "agent-a", "tax accountant"),
        register("m2", "agent-b", "rust engineer"),
        msg("heartbeat", "m3", "agent-a", None, serde_json::json!({ "load": 2 })),
        msg("request", "m4", "user-1", None, serde_json::json!({ "taskId": "t1", "query": "file my taxes" })),
        msg("offer", "m5", "agent-a", Some("user-1"), serde_json::json!({ "taskId": "t1" })),
        msg("result", "m6", "agent-a", Some("user-1"), serde_json::json!({ "taskId": "t1", "success": true, "latencyMs": 120.0 })),
        msg("feedback", "m7", "user-1", Some("agent-a"), serde_json::json!({ "taskId": "t1", "success": true })),
        msg("deregister", "m8", "agent-b", None, serde_json::json!({})),
    ];
    let out = reg.process_batch(&batch);
    assert!(out.iter().all(|o| o.ok && !o.duplicate && o.error.is_none()), "{out:?}");
    assert_eq!(out[5].kind, Some("result"));
    assert_eq!(reg.len(), 1);
    let a = reg.get("agent-a").unwrap();
    assert_eq!((a.load, a.status, a.capacity), (2, Status::Busy, 2));
    assert!((a.trust() - 3.0 / 4.0).abs() < 1e-12, "two successes over a Beta(1,1) prior");
    assert_eq!(a.ledger.response_ms(), Some(120.0));
    assert_eq!(reg.ids_by_status(Status::Busy), vec!["agent-a"]);
    assert_eq!(reg.counters(), (8, 0));
}

#[test]
fn replays_change_nothing() {
    let mut reg = Registry::new(RegistryOptions::default());
    let first = vec![
        register("r1", "a", "chef"),
        msg("result", "r2", "a", None, serde_json::json!({ "taskId": "t", "success": false, "latencyMs": 50.0 })),
    ];
    reg.process_batch(&first);
    let before = reg.get("a").unwrap().clone();
    let again = reg.process_batch(&first);
    assert!(again.iter().all(|o| o.ok && o.duplicate));
    assert_eq!(reg.get("a").unwrap(), &before);
    assert_eq!(reg.counters(), (2, 0));
}

#[test]
fn bad_messages_are_rejected_one_by_one_with_reasons() {
    let mut reg = Registry::new(RegistryOptions::default());
    let batch = vec![
        "{not json".to_string(),
        register("ok1", "a", "lawyer"),
        msg("heartbeat", "h1", "ghost", None, serde_json::json!({})),
        msg("feedback", "f1", "user", Some("ghost"), serde_json::json!({ "success": true })),
        msg("deregister", "d1", "nobody", None, serde_json::json!({})),
        register("ok2", "b", "doctor"),
    ];
    let out = reg.process_batch(&batch);
    let codes: Vec<Option<ErrorCode>> = out.iter().map(|o| o.error.as_ref().map(|e| e.code)).collect();
    assert_eq!(
        codes,
        vec![
            Some(ErrorCode::PmlJson),
            None,
            Some(ErrorCode::UnknownAgent),
            Some(ErrorCode::UnknownAgent),
            Some(ErrorCode::UnknownAgent),
            None
        ]
    );
    assert_eq!(reg.len(), 2, "the good messages around the bad ones were applied");
    assert_eq!(reg.counters(), (2, 4));
}

#[test]
fn feedback_on_someone_elses_task_is_refused() {
    let mut reg = Registry::new(RegistryOptions::default());
    reg.process(&register("a1", "a", "x"));
    reg.process(&msg("request", "q1", "alice", None, serde_json::json!({ "taskId": "t9", "query": "q" })));
    let out = reg.process(&msg("feedback", "f1", "mallory", Some("a"), serde_json::json!({ "taskId": "t9", "success": false })));
    assert_eq!(out.error.unwrap().code, ErrorCode::PmlField);
    assert_eq!(reg.get("a").unwrap().ledger.total_outcomes(), 0);
}

#[test]
fn the_window_size_bounds_the_evidence() {
    let mut reg = Registry::new(RegistryOptions { window: 3, ..Default::default() });
    reg.process(&register("w0", "a", "x"));
    for i in 0..10 {
        let out = reg.process(&msg("result", &format!("w{}", i + 1), "a", None, serde_json::json!({ "taskId": "t", "success": i >= 7 })));
        assert!(out.ok);
    }
    // Only the last three outcomes (all successes) count: (3 + 1) / (3 + 2).
    assert!((reg.get("a").unwrap().trust() - 0.8).abs() < 1e-12);
}

#[test]
fn dedupe_memory_is_bounded_and_forgets_oldest_first() {
    let mut reg = Registry::new(RegistryOptions { dedupe_capacity: 2, ..Default::default() });
    for i in 0..3 {
        reg.process(&register(&format!("d{i}"), "a", "x"));
    }
    assert!(reg.process(&register("d2", "a", "x")).duplicate);
    assert!(!reg.process(&register("d0", "a", "x")).duplicate, "d0 fell out of the window");
}

#[test]
fn snapshot_round_trip_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = Registry::new(RegistryOptions { window: 7, dedupe_capacity: 100 });
    reg.process_batch(&[
        register("s1", "a", "pilot"),
        msg("result", "s2", "a", None, serde_json::json!({ "taskId": "t", "success": true })),
    ]);
    let path = dir.path().join("registry.json");
    reg.save(&path).unwrap();
    let mut back = Registry::load(&path).unwrap();
    assert_eq!(back.get("a"), reg.get("a"));
    assert_eq!(back.options(), reg.options());
    assert!(back.process(&register("s1", "a", "pilot")).duplicate, "remembered msgIds survive a restore");
    std::fs::write(&path, "{\"version\": 1, \"registry\": 42}").unwrap();
    assert_eq!(Registry::load(&path).err().unwrap().code(), ErrorCode::CorruptSnapshot);
}

#[test]
fn the_committed_corpus_gets_the_expected_codes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let expected = std::fs::read_to_string(dir.join("pml_corpus.expected")).unwrap();
    let mut checked = 0;
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let (file, code) = line.split_once(' ').unwrap();
        let raw = std::fs::read_to_string(dir.join("pml_corpus").join(file)).unwrap();
        let err = pml::parse(&raw).expect_err(file);
        assert_eq!(err.code.as_str(), code, "{file}: {}", err.reason);
        checked += 1;
    }
    assert!(checked >= 15);
}

fn valid_message() -> impl Strategy<Value = String> {
    let kinds = prop_oneof![
        Just(("register", serde_json::json!({ "specialty": "s" }))),
        Just(("heartbeat", serde_json::json!({ "load": 1, "status": "busy" }))),
        Just(("request", serde_json::json!({ "taskId": "t", "query": "q" }))),
        Just(("result", serde_json::json!({ "taskId": "t", "success": true, "latencyMs": 3.5 }))),
        Just(("deregister", serde_json::json!({}))),
    ];
    (kinds, "[a-z0-9-]{1,12}", "[a-z]{1,6}").prop_map(|((kind, body), id, from)| msg(kind, &id, &from, None, body))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary text never panics, and an outcome is ok exactly when it has no error.
    #[test]
    fn arbitrary_input_never_panics(raw in ".{0,300}") {
        let mut reg = Registry::new(RegistryOptions::default());
        let out = reg.process(&raw);
        prop_assert_eq!(out.ok, out.error.is_none());
    }

    /// Valid messages with bytes cut, replaced or spliced in: still no panic, and whatever is
    /// rejected leaves the registry as it was.
    #[test]
    fn mutated_messages_are_rejected_cleanly(m in valid_message(), cut in 0usize..200, byte in any::<u8>(), pos in 0usize..200) {
        let mut bytes = m.into_bytes();
        let pos = pos % (bytes.len() + 1);
        if cut % 3 == 0 { bytes.truncate(pos) } else if cut % 3 == 1 && pos < bytes.len() { bytes[pos] = byte } else { bytes.insert(pos, byte) }
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let mut reg = Registry::new(RegistryOptions::default());
        let out = reg.process(&raw);
        if !out.ok {
            prop_assert_eq!(reg.len(), 0);
            prop_assert_eq!(reg.counters(), (0, 1));
        }
    }
}
