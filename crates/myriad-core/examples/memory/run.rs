//! The measurement shared by `memory` (system allocator) and `memory_mimalloc`.
//!
//! One process, as in the simulation bench (`benches/simulation/floor.ts`): N random unit vectors
//! of 384 dimensions upserted into an f16 `SemanticIndex` in batches of 8,192 (ids `a-<i>`, or
//! 36-character UUID-shaped ids with `uuid`), then N agents registered through PML `register`
//! messages in batches of 8,192 (msgId `r-<id>`), specialty texts of ~60 characters taken from
//! 10,000 distinct ones. RSS is read before and after each phase (and two seconds later: mimalloc
//! returns freed pages with a delay), with the peak (VmHWM, reset before each phase), the bytes
//! the structures count as allocated (`SemanticIndex::memory`, `Registry::memory`), and at the end
//! how much of the RSS sits in transparent huge pages (mimalloc 3 asks for them).

use std::time::Instant;

use myriad_core::{IndexOptions, Registry, RegistryOptions, SemanticIndex, Storage};

const DIM: usize = 384;
const BATCH: usize = 8192;
const TEXTS: usize = 10_000;

/// Resident set size in bytes: the second field of /proc/self/statm, in pages.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux only)");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// Peak resident set size in bytes since the last [`reset_peak`]: VmHWM of /proc/self/status.
fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Resident bytes in transparent huge pages (AnonHugePages of /proc/self/smaps_rollup).
fn huge_pages() -> u64 {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    rollup.lines().find(|l| l.starts_with("AnonHugePages:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).unwrap_or(0)
        * 1024
}

/// Starts a new peak: writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

fn agent_id(i: usize, uuid: bool) -> String {
    if uuid {
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", h >> 32, (h >> 16) & 0xffff, h & 0xfff, (i >> 12) & 0xfff, i)
    } else {
        format!("a-{i}")
    }
}

/// 10,000 distinct specialty texts of ~60 characters.
fn specialties() -> Vec<String> {
    const FIELDS: [&str; 10] =
        ["tax law", "rust systems", "oncology", "tort claims", "ml ops", "baking", "sailing", "opera", "chess", "geology"];
    const ROLES: [&str; 10] =
        ["advisor", "engineer", "researcher", "teacher", "consultant", "analyst", "writer", "coach", "auditor", "curator"];
    (0..TEXTS)
        .map(|i| {
            let (f, r) = (FIELDS[i % 10], ROLES[(i / 10) % 10]);
            let mut s = format!("{f} {r} #{i:05}, helps with questions on {f} for clients");
            s.truncate(62);
            s
        })
        .collect()
}

/// RSS after two idle seconds and a few allocations: mimalloc (v3) returns freed pages to the OS
/// only after a delay (1 s by default), when it next allocates.
fn settled() -> u64 {
    std::thread::sleep(std::time::Duration::from_secs(2));
    for size in [1 << 10, 1 << 16, 1 << 20, 1 << 10] {
        std::hint::black_box(vec![1u8; size]);
    }
    rss()
}

fn report(what: &str, before: u64, after: u64, n: usize, seconds: f64) {
    let delta = after.saturating_sub(before);
    println!(
        "{what:<36} RSS {:>7.1} MB -> {:>7.1} MB: +{:>7.1} MB, {:>5.0} B per agent; peak +{:>7.1} MB ({:.1} s)",
        mb(before),
        mb(after),
        mb(delta),
        delta as f64 / n as f64,
        mb(peak().saturating_sub(before)),
        seconds
    );
    let settled = settled();
    println!(
        "{:<36} RSS {:>7.1} MB two seconds later: +{:>7.1} MB, {:>5.0} B per agent",
        "",
        mb(settled),
        mb(settled.saturating_sub(before)),
        settled.saturating_sub(before) as f64 / n as f64
    );
}

pub fn main(allocator: &str) {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(1_000_000, |s| s.replace('_', "").parse().expect("N"));
    let phases = args.get(2).map_or("both", String::as_str);
    let uuid = args.get(3).is_some_and(|s| s == "uuid");
    let (do_index, do_registry) = match phases {
        "index" => (true, false),
        "registry" => (false, true),
        _ => (true, true),
    };
    println!("allocator: {allocator}; N = {n}; ids: {}", if uuid { "36-byte UUID-shaped" } else { "a-<i>" });
    let texts = specialties();
    let start = rss();
    println!("{:<36} RSS {:>8.1} MB", "start", mb(start));

    let mut index = None;
    if do_index {
        reset_peak();
        let before = rss();
        let t = Instant::now();
        let mut idx = SemanticIndex::new(IndexOptions { dim: DIM, storage: Storage::F16, ..Default::default() }).unwrap();
        let mut rng = Rng(42);
        let mut vectors = vec![0f32; BATCH * DIM];
        for at in (0..n).step_by(BATCH) {
            let m = BATCH.min(n - at);
            let ids: Vec<String> = (at..at + m).map(|i| agent_id(i, uuid)).collect();
            vectors[..m * DIM].iter_mut().for_each(|v| *v = rng.unit());
            idx.upsert(&ids, &vectors[..m * DIM]).unwrap();
        }
        drop(vectors);
        let after = rss();
        report(&format!("index: {n} x {DIM} f16 upserted"), before, after, n, t.elapsed().as_secs_f64());
        println!("{:<36} payload {:.1} MB (768 B per agent of f16 rows)", "", mb((n * DIM * 2) as u64));
        let m = idx.memory();
        println!(
            "{:<36} allocated: rows {:.1} MB, sketch {:.1} MB, ids {:.1} MB: {:.0} B per agent ({:.0} + {:.0} + {:.0})",
            "",
            mb(m.rows as u64),
            mb(m.sketch as u64),
            mb(m.ids as u64),
            m.total() as f64 / n as f64,
            m.rows as f64 / n as f64,
            m.sketch as f64 / n as f64,
            m.ids as f64 / n as f64
        );
        // Single-query search time (the sketch's path), p50 of 21.
        let q: Vec<f32> = (0..DIM).map(|_| rng.unit()).collect();
        let mut times: Vec<f64> = (0..21)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(idx.top_k(&q, 5).unwrap());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!("{:<36} top-5 of one query: p50 {:.2} ms, min {:.2} ms", "", times[10], times[0]);
        index = Some(idx);
    }

    let mut registry = None;
    if do_registry {
        reset_peak();
        let before = rss();
        let t = Instant::now();
        let mut reg = Registry::new(RegistryOptions::default());
        for at in (0..n).step_by(BATCH) {
            let m = BATCH.min(n - at);
            let msgs: Vec<String> = (at..at + m)
                .map(|i| {
                    let id = agent_id(i, uuid);
                    let s = &texts[i % TEXTS];
                    format!(r#"{{"v":1,"type":"register","msgId":"r-{id}","from":"{id}","ts":0,"body":{{"specialty":"{s}"}}}}"#)
                })
                .collect();
            let out = reg.process_batch(&msgs);
            assert!(out.iter().all(|o| o.ok && !o.duplicate));
        }
        let after = rss();
        report(&format!("registry: {n} agents registered"), before, after, n, t.elapsed().as_secs_f64());
        let text_bytes: usize = (0..n).map(|i| texts[i % TEXTS].len()).sum();
        println!(
            "{:<36} of which specialty text: {:.1} MB of characters ({:.0} B per agent)",
            "",
            mb(text_bytes as u64),
            text_bytes as f64 / n as f64
        );
        assert_eq!(reg.len(), n);
        let m = reg.memory();
        println!(
            "{:<36} allocated: {:.0} B per agent besides specialty texts (records {:.0}, ids {:.0}, msgId digests {:.0}); texts {:.1} MB",
            "",
            (m.total() - m.specialties) as f64 / n as f64,
            m.agents as f64 / n as f64,
            m.ids as f64 / n as f64,
            m.dedupe as f64 / n as f64,
            mb(m.specialties as u64)
        );
        registry = Some(reg);
    }
    let end = rss();
    println!(
        "{:<36} RSS {:>8.1} MB: +{:.1} MB in all, {:.0} B per agent ({:.1} MB of it in transparent huge pages)",
        "end",
        mb(end),
        mb(end - start),
        (end - start) as f64 / n as f64,
        mb(huge_pages())
    );
    std::hint::black_box((&index, &registry));
}
