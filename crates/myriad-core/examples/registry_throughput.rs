//! PML throughput of the registry alone (no N-API): `cargo run --release --example registry_throughput`.
use myriad_core::{Registry, RegistryOptions};
use std::time::Instant;

fn main() {
    let mut reg = Registry::new(RegistryOptions::default());
    let agents: Vec<String> = (0..1000).map(|i| format!("agent-{i}")).collect();
    let regs: Vec<String> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(r#"{{"v":1,"type":"register","msgId":"reg-{i}","from":"{a}","ts":{i},"body":{{"specialty":"s","capacity":4}}}}"#)
        })
        .collect();
    reg.process_batch(&regs);
    for round in 0..5 {
        let msgs: Vec<String> = (0..100_000)
            .map(|i| {
                let a = &agents[i * 7919 % agents.len()];
                let id = format!("{round:02}-{i:08}-5c4d-4e8f-9a0b-{i:012}");
                match i % 5 {
                    0 => format!(r#"{{"v":1,"msgId":"{id}","ts":1700000000000,"type":"heartbeat","from":"{a}","body":{{"load":1}}}}"#),
                    1 => format!(r#"{{"v":1,"msgId":"{id}","ts":1700000000000,"type":"request","from":"runtime","body":{{"taskId":"task-{i}","query":"who can help?"}}}}"#),
                    2 => format!(r#"{{"v":1,"msgId":"{id}","ts":1700000000000,"type":"offer","from":"{a}","to":"runtime","body":{{"taskId":"task-{i}"}}}}"#),
                    3 => format!(r#"{{"v":1,"msgId":"{id}","ts":1700000000000,"type":"result","from":"{a}","to":"runtime","body":{{"taskId":"task-{i}","success":true,"latencyMs":42.5}}}}"#),
                    _ => format!(r#"{{"v":1,"msgId":"{id}","ts":1700000000000,"type":"feedback","from":"runtime","to":"{a}","body":{{"success":false}}}}"#),
                }
            })
            .collect();
        let t = Instant::now();
        let out = reg.process_batch(&msgs);
        let dt = t.elapsed().as_secs_f64();
        assert!(out.iter().all(|o| o.ok));
        println!("round {round}: {:.0} msg/s ({:.2} us/msg)", msgs.len() as f64 / dt, dt * 1e6 / msgs.len() as f64);
    }
}
