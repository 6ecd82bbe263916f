//! The archive when the disk refuses writes. A file-size limit (RLIMIT_FSIZE) stands in for a full
//! disk: a write that crosses it is cut short at the limit and the next one fails (EFBIG), which is
//! what ENOSPC does midway through a block. The limit is per process, so this test has a binary of
//! its own.
#![cfg(unix)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apache_avro::types::Value;
use myriad_core::sink::{self, Sink, SinkOptions};
use myriad_core::ErrorCode;

/// `n` message rows numbered from `first` (msg_id = first + i), with ~200-byte payloads.
fn messages(first: u64, n: u64) -> String {
    let rows: Vec<String> = (first..first + n)
        .map(|i| {
            format!(
                r#"{{"exp_id":"exp-full","msg_id":"{}","src":"agent-{}","ts":{},"payload":{{"text":"{}","n":{i}}}}}"#,
                uuid::Uuid::from_u128(i as u128),
                i % 1000,
                1_795_960_800_000u64 + i,
                "x".repeat(200)
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

/// Sets the soft limit on the size of files this process writes.
fn limit_file_size(bytes: Option<u64>) {
    let limit = libc::rlimit { rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY), rlim_max: libc::RLIM_INFINITY };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// The msg ids of the archive file, in file order (reading fails on a torn or doubled block).
fn archived_ids(path: &std::path::Path) -> Vec<u128> {
    let reader = apache_avro::Reader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader
        .map(|row| {
            let Value::Record(fields) = row.expect("every block of the archive reads") else { panic!("not a record") };
            let Value::Union(_, id) = &fields[1].1 else { panic!("msg_id is nullable: {:?}", fields[1].1) };
            match &**id {
                Value::Uuid(u) => u.as_u128(),
                Value::String(s) => uuid::Uuid::parse_str(s).unwrap().as_u128(),
                other => panic!("msg_id {other:?}"),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_writes_back_and_loses_or_doubles_no_row() {
    // Past the limit the kernel also sends SIGXFSZ, which would end the process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let options = SinkOptions {
        dir: Some(dir.path().into()),
        batch_rows: 100,
        max_pending_rows: 1000,
        flush_interval: Duration::from_millis(50),
        close_timeout: Duration::from_millis(600),
        ..Default::default()
    };
    let path = sink::archive_path(dir.path(), sink::Table::Messages, "exp-full");
    let sink = Arc::new(Sink::open(options).await.unwrap());
    sink.write("messages", &messages(0, 300)).await.unwrap();
    sink.flush().await.unwrap();

    // The disk fills up 5 KB on, a third of the way into the next block of 100 rows (~30 KB).
    limit_file_size(Some(std::fs::metadata(&path).unwrap().len() + 5000));
    let calls_done = Arc::new(AtomicU64::new(0));
    let writer = {
        let (sink, calls_done) = (sink.clone(), calls_done.clone());
        tokio::spawn(async move {
            for call in 0..20 {
                let out = sink.write("messages", &messages(300 + call * 100, 100)).await.unwrap();
                assert_eq!(out.accepted, 100);
                calls_done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Rows pile up to the bound (1,000 rows) and no further: the next call waits.
    let stats = sink.stats();
    assert!(!writer.is_finished(), "every write went through although the disk was full: {stats:?}");
    assert_eq!(calls_done.load(Ordering::SeqCst), 10, "{stats:?}");
    assert_eq!((stats.accepted, stats.written, stats.lag), (1300, 300, 1000), "{stats:?}");
    let err = sink.flush().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    // A call whose rows are all refused holds nothing back, so it is answered at once.
    let refused = tokio::time::timeout(Duration::from_secs(1), sink.write("messages", r#"[{"exp_id":"exp-full"}]"#)).await;
    let refused = refused.expect("a call with no accepted rows does not wait").unwrap();
    assert_eq!((refused.accepted, refused.rejected.len()), (0, 1));

    // Room again: the waiting call and the rest go through, each row once and in order.
    limit_file_size(None);
    tokio::time::timeout(Duration::from_secs(10), writer).await.expect("writes resume once the disk has room").unwrap();
    sink.flush().await.unwrap();
    assert_eq!(sink.stats().written, 2300);
    assert_eq!(archived_ids(&path), (0..2300).collect::<Vec<u128>>());

    // Full again at close: close retries until its timeout, then reports the rows it gave up on.
    limit_file_size(Some(std::fs::metadata(&path).unwrap().len() + 5000));
    sink.write("messages", &messages(2300, 150)).await.unwrap();
    let err = sink.close().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SinkWrite, "{err}");
    assert!(err.to_string().contains("150 rows of messages"), "{err}");
    let stats = sink.stats();
    assert_eq!((stats.written, stats.failed, stats.lag), (2300, 150, 0), "{stats:?}");
    limit_file_size(None);
    // What was written stays a whole archive: the torn block was cut, not left for the next run.
    assert_eq!(archived_ids(&path), (0..2300).collect::<Vec<u128>>());
}
