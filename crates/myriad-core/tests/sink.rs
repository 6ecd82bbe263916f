//! The recording sink against the real PostgreSQL on 127.0.0.1:5432 (database `test`; each test
//! in a schema of its own) and against a PostgreSQL the test starts and restarts itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use myriad_core::sink::{self, import_archive, Sink, SinkOptions};
use myriad_core::ErrorCode;
use sqlx::{Connection, PgConnection};

const DSN: &str = "postgres://root@127.0.0.1:5432/test";

fn fresh_schema(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("t_{tag}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn options(dsn: &str, schema: &str) -> SinkOptions {
    SinkOptions { dsn: Some(dsn.into()), schema: schema.into(), ..Default::default() }
}

/// `n` message rows numbered from `first`: msg_id = first + i, so counts and duplicates can be checked.
fn messages(exp: &str, first: u64, n: u64) -> String {
    let rows: Vec<String> = (first..first + n)
        .map(|i| {
            format!(
                r#"{{"exp_id":"{exp}","msg_id":"{}","src":"agent-{}","dst":"agent-{}","kind":"agent-chat","ts":{},"payload":{{"text":"hello {i}","n":{i}}}}}"#,
                uuid::Uuid::from_u128(i as u128),
                i % 1000,
                (i + 1) % 1000,
                1_795_960_800_000u64 + i
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

/// Writes `calls` message calls of 1,000 rows (`call * 1000` onwards), pausing `pause_ms` between
/// them, then flushes: the load a fault is injected under.
fn write_in_the_background(
    sink: Arc<Sink>,
    exp: &'static str,
    calls: u64,
    pause_ms: u64,
) -> tokio::task::JoinHandle<myriad_core::Result<()>> {
    tokio::spawn(async move {
        for call in 0..calls {
            let out = sink.write("messages", &messages(exp, call * 1000, 1000)).await.unwrap();
            assert_eq!(out.accepted, 1000);
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        sink.flush().await
    })
}

async fn query_i64(dsn: &str, sql: String) -> i64 {
    let mut conn = PgConnection::connect(dsn).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut conn).await.unwrap()
}

/// (rows, distinct msg_ids) in the schema's messages table.
async fn counts(dsn: &str, schema: &str) -> (i64, i64) {
    let rows = query_i64(dsn, format!("SELECT count(*) FROM {schema}.messages")).await;
    let distinct = query_i64(dsn, format!("SELECT count(DISTINCT msg_id) FROM {schema}.messages")).await;
    (rows, distinct)
}

/// The messages rows of `exp`'s archive file, read back with apache-avro (every block must read).
fn archived_messages(dir: &Path, exp: &str) -> Vec<apache_avro::types::Value> {
    let path = sink::archive_path(dir, sink::Table::Messages, exp);
    apache_avro::Reader::new(std::fs::File::open(&path).unwrap()).unwrap().collect::<Result<_, _>>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_land_in_postgres_as_written_and_bad_rows_are_rejected_alone() {
    let schema = fresh_schema("roundtrip");
    let sink = Sink::open(options(DSN, &schema)).await.unwrap();
    let good = sink.write("messages", &messages("exp-a", 0, 4999)).await.unwrap();
    assert_eq!((good.accepted, good.rejected.len()), (4999, 0));
    let mixed = r#"[
        {"exp_id":"exp-b","src":"a","ts":"2026-11-29T14:00:00.250Z","payload":{"x":"é😀"}},
        {"exp_id":"exp-b","src":"a","ts":null,"payload":{}},
        {"exp_id":"exp-b","src":"a","ts":1,"payload":{"bad":"\u0000"}},
        {"exp_id":"exp-b","src":"a\u0000","ts":1,"payload":{}}
    ]"#;
    let out = sink.write("messages", mixed).await.unwrap();
    assert_eq!(out.accepted, 1);
    assert_eq!(out.rejected.iter().map(|r| r.index).collect::<Vec<_>>(), vec![1, 2, 3]);
    let metrics = sink.write("metrics", r#"[{"exp_id":"exp-a","ts":5,"name":"gdp","value":1.5,"labels":{"k":"v"}}]"#).await.unwrap();
    assert_eq!(metrics.accepted, 1);
    sink.flush().await.unwrap();
    let stats = sink.stats();
    assert_eq!((stats.accepted, stats.written, stats.rejected, stats.lag), (5001, 5001, 3, 0));
    assert_eq!(counts(DSN, &schema).await, (5000, 4999));

    let mut conn = PgConnection::connect(DSN).await.unwrap();
    let (ts, payload, dst): (String, String, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), payload::text, dst FROM {schema}.messages WHERE exp_id = 'exp-b'"
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((ts.as_str(), payload.as_str(), dst), ("2026-11-29 14:00:00.250", r#"{"x": "é😀"}"#, None));
    let (msg_id, n): (String, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT msg_id::text, (payload->>'n')::bigint FROM {schema}.messages WHERE src = 'agent-7' AND exp_id = 'exp-a' ORDER BY ts LIMIT 1"
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((msg_id, n), (uuid::Uuid::from_u128(7).to_string(), 7));
    // Each experiment has a partition of its own.
    let partitions = query_i64(DSN, format!("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relname = 'messages'")).await;
    assert_eq!(partitions, 2);
    sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_even_when_raced() {
    let schema = fresh_schema("migrate");
    let runs = futures_join(3, |_| {
        let schema = schema.clone();
        async move { sink::migrate(DSN, &schema).await }
    })
    .await;
    let applied: Vec<Vec<i32>> = runs.into_iter().map(Result::unwrap).collect();
    assert_eq!(applied.iter().filter(|a| a == &&vec![1]).count(), 1, "{applied:?}");
    assert_eq!(applied.iter().filter(|a| a.is_empty()).count(), 2, "{applied:?}");
    assert!(sink::migrate(DSN, &schema).await.unwrap().is_empty());
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.myriad_migrations")).await, 1);
}

async fn futures_join<T: Send + 'static, F: std::future::Future<Output = T> + Send + 'static>(n: usize, f: impl Fn(usize) -> F) -> Vec<T> {
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_mid_run_lose_and_double_nothing() {
    let schema = fresh_schema("killed");
    let sink = Arc::new(Sink::open(SinkOptions { batch_rows: 500, ..options(DSN, &schema) }).await.unwrap());
    let writer = write_in_the_background(sink.clone(), "exp-k", 60, 5);
    let mut killed = 0;
    let mut admin = PgConnection::connect(DSN).await.unwrap();
    while !writer.is_finished() {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'myriad-sink' AND query LIKE '%\"{schema}\"%'"
        )))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        killed += n;
    }
    writer.await.unwrap().unwrap();
    assert!(killed > 0, "no connection was killed mid-batch: the test proved nothing");
    assert!(sink.stats().retries > 0);
    assert_eq!(counts(DSN, &schema).await, (60_000, 60_000));
    sink.close().await.unwrap();
}

/// Holds a lock that blocks every COPY into `schema`'s messages, starts writing `rows` and checks
/// that the write is still waiting for room 500 ms later. Returns the lock's connection (COMMIT
/// lets the batches through) and the write.
async fn write_against_a_locked_table(
    sink: &Arc<Sink>,
    schema: &str,
    rows: String,
) -> (PgConnection, tokio::task::JoinHandle<sink::WriteOutcome>) {
    let mut blocker = PgConnection::connect(DSN).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN; LOCK TABLE {schema}.messages IN ACCESS EXCLUSIVE MODE")))
        .execute(&mut blocker)
        .await
        .unwrap();
    let writer = {
        let sink = sink.clone();
        tokio::spawn(async move { sink.write("messages", &rows).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writer.is_finished(), "write returned while the queue was full");
    (blocker, writer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_write_wait_and_nothing_is_dropped() {
    let schema = fresh_schema("backpressure");
    let sink = Arc::new(
        Sink::open(SinkOptions { batch_rows: 100, max_pending_rows: 200, concurrency: 1, ..options(DSN, &schema) }).await.unwrap(),
    );
    // Warm the partition, then hold a lock that blocks every COPY into the table.
    sink.write("messages", &messages("exp-bp", 0, 1)).await.unwrap();
    sink.flush().await.unwrap();
    let (mut blocker, writer) = write_against_a_locked_table(&sink, &schema, messages("exp-bp", 1, 1000)).await;
    let stats = sink.stats();
    assert!(stats.lag <= 200, "more rows pending than max_pending_rows: {stats:?}");
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    assert_eq!(writer.await.unwrap().accepted, 1000);
    sink.close().await.unwrap();
    assert_eq!(counts(DSN, &schema).await, (1001, 1001));
}

/// `n` message rows whose payload holds `text_bytes` bytes of text.
fn big_messages(exp: &str, first: u64, n: u64, text_bytes: usize) -> String {
    let text = "x".repeat(text_bytes);
    let rows: Vec<String> = (first..first + n)
        .map(|i| {
            format!(
                r#"{{"exp_id":"{exp}","msg_id":"{}","src":"a","ts":{i},"payload":{{"text":"{text}"}}}}"#,
                uuid::Uuid::from_u128(i as u128)
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

/// With large rows the byte bound holds where the row bound would not: 100 KB rows against 1 MiB
/// of byte permits leave at most 10 rows pending (the row bound here is 100,000), batches are cut
/// at a quarter of the permits, and a row larger than every permit still goes, alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rows_are_bounded_by_bytes_and_cut_into_smaller_batches() {
    let schema = fresh_schema("bytes");
    let sink = Arc::new(Sink::open(SinkOptions { max_pending_bytes: 1 << 20, concurrency: 1, ..options(DSN, &schema) }).await.unwrap());
    sink.write("messages", &big_messages("exp-bytes", 0, 1, 10)).await.unwrap();
    sink.flush().await.unwrap();
    // 5 MB of rows against 1 MiB of byte permits.
    let (mut blocker, writer) = write_against_a_locked_table(&sink, &schema, big_messages("exp-bytes", 1, 50, 100_000)).await;
    let stats = sink.stats();
    assert!(stats.lag <= 10, "more than 1 MiB of 100 KB rows pending: {stats:?}");
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    assert_eq!(writer.await.unwrap().accepted, 50);
    let huge = sink.write("messages", &big_messages("exp-bytes", 51, 1, 1_500_000)).await.unwrap();
    assert_eq!(huge.accepted, 1, "a row larger than every byte permit is accepted");
    sink.flush().await.unwrap();
    let stats = sink.stats();
    // 256 KiB batches hold two 100 KB rows: 25 batches for the 50, plus the first and the huge one.
    assert_eq!((stats.batches, stats.written, stats.lag), (27, 52, 0));
    sink.close().await.unwrap();
    assert_eq!(counts(DSN, &schema).await, (52, 52));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_lands_after_the_flush_interval_without_a_flush() {
    let schema = fresh_schema("trickle");
    let interval = Duration::from_millis(50);
    let sink = Sink::open(SinkOptions { flush_interval: interval, ..options(DSN, &schema) }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = Sink::open(SinkOptions { dir: Some(dir.path().into()), flush_interval: interval, ..Default::default() }).await.unwrap();
    sink.write("messages", &messages("exp-t", 0, 10)).await.unwrap();
    archive.write("messages", &messages("exp-t", 0, 10)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sink.stats().written < 10 || archive.stats().written < 10 {
        assert!(std::time::Instant::now() < deadline, "not written by the interval: {:?} {:?}", sink.stats(), archive.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counts(DSN, &schema).await, (10, 10));
    sink.close().await.unwrap();
    archive.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_errors_for_misuse() {
    let err = Sink::open(options("postgres://root@127.0.0.1:1/test", "x")).await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::SinkConnect);
    let err = Sink::open(options(DSN, "Bad-Name")).await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::InvalidArg);
    let schema = fresh_schema("errors");
    let sink = Sink::open(options(DSN, &schema)).await.unwrap();
    assert_eq!(sink.write("nope", "[]").await.unwrap_err().code(), ErrorCode::InvalidArg);
    assert_eq!(sink.write("messages", "{not json").await.unwrap_err().code(), ErrorCode::InvalidArg);
    sink.close().await.unwrap();
    assert_eq!(sink.write("messages", "[]").await.unwrap_err().code(), ErrorCode::SinkClosed);
}

async fn execute(sql: String) {
    let mut conn = PgConnection::connect(DSN).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
}

/// Rows the server refuses (here: a CHECK constraint added under the sink that every batch breaks)
/// are tried twice, then given up on and reported by `flush`: one line for the reason, however
/// many batches it cost. Once the cause is gone, later rows land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_server_refuses_are_reported_once_per_reason_and_later_rows_land() {
    let schema = fresh_schema("refused");
    let sink = Sink::open(SinkOptions { batch_rows: 100, ..options(DSN, &schema) }).await.unwrap();
    execute(format!("ALTER TABLE {schema}.messages ADD CONSTRAINT no_chat CHECK (kind <> 'agent-chat')")).await;
    assert_eq!(sink.write("messages", &messages("exp-refused", 0, 5000)).await.unwrap().accepted, 5000);
    let err = sink.flush().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SinkWrite);
    let report = err.to_string();
    assert!(report.contains("5000 rows of messages (50 batches): ") && report.contains("no_chat"), "{report}");
    assert_eq!(report.matches("no_chat").count(), 1, "one line per reason: {report}");
    let stats = sink.stats();
    assert_eq!((stats.failed, stats.written, stats.lag), (5000, 0, 0));

    execute(format!("ALTER TABLE {schema}.messages DROP CONSTRAINT no_chat")).await;
    sink.write("messages", &messages("exp-refused", 5000, 1000)).await.unwrap();
    sink.flush().await.expect("the report was given once; the new rows land");
    assert_eq!(counts(DSN, &schema).await, (1000, 1000));
    sink.close().await.unwrap();
}

/// An experiment may already have a partition the sink did not make: one of the user's own
/// naming, or a DEFAULT partition holding some of its rows. Creating another would fail
/// ("would overlap", or a violated default-partition constraint); the rows go where Postgres
/// routes them instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiments_partitioned_outside_the_sink_get_their_rows() {
    let schema = fresh_schema("ownparts");
    let sink = Sink::open(options(DSN, &schema)).await.unwrap();
    execute(format!("CREATE TABLE {schema}.messages_mine PARTITION OF {schema}.messages FOR VALUES IN ('exp-mine')")).await;
    execute(format!("CREATE TABLE {schema}.messages_rest PARTITION OF {schema}.messages DEFAULT")).await;
    execute(format!("INSERT INTO {schema}.messages (exp_id, src, ts, payload) VALUES ('exp-rest', 'agent-0', now(), '{{}}')")).await;
    sink.write("messages", &messages("exp-mine", 0, 1000)).await.unwrap();
    sink.write("messages", &messages("exp-rest", 1000, 1000)).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.messages_mine")).await, 1000);
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.messages_rest")).await, 1001);
    sink.close().await.unwrap();
}

/// sqlx's TCP connections (vendor/sqlx-core, MYRIAD PATCH) have Nagle's algorithm off. With it on,
/// each COPY batch's final small write waited for the server's delayed ACK: up to 40 ms a batch,
/// a large share of the sink's rate on one connection.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_sockets_are_opened_with_tcp_nodelay() {
    struct NoDelay;
    impl sqlx_core::net::WithSocket for NoDelay {
        type Output = Option<bool>;
        async fn with_socket<S: sqlx_core::net::Socket>(self, socket: S) -> Option<bool> {
            let socket: Box<dyn std::any::Any + Send> = Box::new(socket);
            socket.downcast::<tokio::net::TcpStream>().ok().map(|tcp| tcp.nodelay().unwrap())
        }
    }
    let server: sqlx::postgres::PgConnectOptions = DSN.parse().unwrap();
    let nodelay = sqlx_core::net::connect_tcp(server.get_host(), server.get_port(), NoDelay).await.unwrap();
    assert_eq!(nodelay, Some(true), "a tokio TcpStream with TCP_NODELAY set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_is_standard_avro_appends_across_runs_and_imports_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = SinkOptions { dir: Some(dir.path().into()), batch_rows: 300, ..Default::default() };
    for run in 0..2u64 {
        let sink = Sink::open(archive.clone()).await.unwrap();
        for exp in ["exp-x", "exp y/2"] {
            let out = sink.write("messages", &messages(exp, run * 1000, 1000)).await.unwrap();
            assert_eq!(out.accepted, 1000);
        }
        sink.write("metrics", r#"[{"exp_id":"exp-x","ts":"2026-01-01T00:00:00Z","name":"gdp","value":2.5}]"#).await.unwrap();
        sink.close().await.unwrap();
        assert_eq!(sink.stats().written, 2001);
        assert_eq!(sink.stats().batches, 9, "blocks of 300 rows: three full and one partial per experiment, one for the metrics row");
    }
    // Read back with apache-avro: every row, in order, with its values.
    let rows = archived_messages(dir.path(), "exp-x");
    assert_eq!(rows.len(), 2000);
    let apache_avro::types::Value::Record(fields) = &rows[1500] else { panic!("not a record") };
    assert_eq!(fields[2].1, apache_avro::types::Value::String("agent-500".into()));
    assert!(matches!(&fields[6].1, apache_avro::types::Value::String(p) if p == r#"{"text":"hello 1500","n":1500}"#));
    assert_eq!(fields[5].1, apache_avro::types::Value::TimestampMicros(1_795_960_801_500_000));
    let hashed = sink::archive_path(dir.path(), sink::Table::Messages, "exp y/2");
    assert!(hashed.parent().unwrap().file_name().unwrap().to_string_lossy().starts_with("exp-"), "{hashed:?}");

    let schema = fresh_schema("import");
    let first = import_archive(dir.path(), DSN, &options(DSN, &schema)).await.unwrap();
    assert_eq!((first.files, first.rows), (3, 4002));
    let again = import_archive(dir.path(), DSN, &options(DSN, &schema)).await.unwrap();
    assert_eq!(again.rows, 4002);
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.messages")).await, 4000);
    assert_eq!(query_i64(DSN, format!("SELECT count(DISTINCT (exp_id, msg_id)) FROM {schema}.messages")).await, 4000);
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.metrics WHERE value = 2.5")).await, 2);
}

/// Imports between runs that append to the archive, with a different batch size each time, and
/// after a crash left a torn block: every row lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_imported_as_it_grows_lands_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = SinkOptions { dir: Some(dir.path().into()), batch_rows: 300, ..Default::default() };
    let schema = fresh_schema("regrow");
    let import = |batch_rows: usize| {
        let (dir, schema) = (dir.path().to_owned(), schema.clone());
        async move { import_archive(&dir, DSN, &SinkOptions { batch_rows, ..options(DSN, &schema) }).await.unwrap() }
    };
    for (run, batch_rows) in [(0u64, 2000), (1, 700), (2, 50)] {
        let sink = Sink::open(archive.clone()).await.unwrap();
        // 1,000 rows a run: three whole blocks of 300 and the last 100 in a partial block.
        sink.write("messages", &messages("exp-grow", run * 1000, 1000)).await.unwrap();
        sink.close().await.unwrap();
        let report = import(batch_rows).await;
        assert_eq!(report.rows, (run + 1) * 1000, "import {run} reads the whole file");
        let landed = counts(DSN, &schema).await;
        assert_eq!(landed, ((run as i64 + 1) * 1000, (run as i64 + 1) * 1000), "(rows, distinct ids) after import {run}");
    }
    // A crash mid-block: the torn tail holds rows never flushed; import takes the whole blocks.
    let path = sink::archive_path(dir.path(), sink::Table::Messages, "exp-grow");
    let mut torn = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut torn, &[0x90, 0x03, 0xb0, 0x8c, 0x01, 7, 7, 7]).unwrap();
    drop(torn);
    assert_eq!(import(2000).await.rows, 3000);
    assert_eq!(counts(DSN, &schema).await, (3000, 3000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_larger_than_a_batch_is_imported_in_parts_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::open(SinkOptions { dir: Some(dir.path().into()), batch_rows: 10_000, ..Default::default() }).await.unwrap();
    sink.write("messages", &messages("exp-big", 0, 4500)).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(sink.stats().batches, 1, "one block of 4,500 rows");
    let schema = fresh_schema("parts");
    for _ in 0..2 {
        assert_eq!(import_archive(dir.path(), DSN, &options(DSN, &schema)).await.unwrap().rows, 4500);
        assert_eq!(counts(DSN, &schema).await, (4500, 4500));
    }
    let batches = query_i64(DSN, format!("SELECT count(*) FROM {schema}.myriad_batches")).await;
    assert_eq!(batches, 3, "parts of 2,000, 2,000 and 500 rows");
}

/// A Postgres sink dropped without `close` is closed in the background: its rows land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_sink_dropped_without_close_writes_its_rows() {
    let schema = fresh_schema("dropped");
    let sink = Sink::open(SinkOptions { flush_interval: Duration::from_secs(3600), ..options(DSN, &schema) }).await.unwrap();
    // The interval's first tick comes at once: let it pass, so that no tick seals the rows.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.write("messages", &messages("exp-dropped", 0, 10)).await.unwrap().accepted, 10);
    drop(sink);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while counts(DSN, &schema).await.0 < 10 {
        assert!(std::time::Instant::now() < deadline, "the rows of a dropped sink did not land");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts(DSN, &schema).await, (10, 10));
}

/// A sink dropped without `close` (in Node: its object collected) still writes what it accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_sink_dropped_without_close_writes_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::open(SinkOptions { dir: Some(dir.path().into()), flush_interval: Duration::from_secs(3600), ..Default::default() })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // past the interval's first tick, which comes at once
    assert_eq!(sink.write("messages", &messages("exp-dropped", 0, 10)).await.unwrap().accepted, 10);
    assert_eq!(sink.stats().written, 0, "a partial block waits for the interval");
    drop(sink);
    assert_eq!(archived_messages(dir.path(), "exp-dropped").len(), 10);
}

/// Two sinks on one archive would interleave their blocks: the second is refused the file while
/// the first has it, and gets it once the first closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_file_has_one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let archive = SinkOptions { dir: Some(dir.path().into()), ..Default::default() };
    let (first, second) = (Sink::open(archive.clone()).await.unwrap(), Sink::open(archive).await.unwrap());
    first.write("messages", &messages("exp-shared", 0, 100)).await.unwrap();
    let err = second.write("messages", &messages("exp-shared", 100, 100)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    assert!(err.to_string().contains("another sink"), "{err}");
    assert_eq!(second.write("messages", &messages("exp-other", 0, 100)).await.unwrap().accepted, 100, "other files are free");
    first.close().await.unwrap();
    assert_eq!(second.write("messages", &messages("exp-shared", 100, 100)).await.unwrap().accepted, 100);
    second.close().await.unwrap();
    assert_eq!(archived_messages(dir.path(), "exp-shared").len(), 200);
}

/// A file under another schema (another version's, here a renamed column) is neither appended to
/// nor imported: rows are encoded and decoded by column position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_file_under_another_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = SinkOptions { dir: Some(dir.path().into()), ..Default::default() };
    let sink = Sink::open(archive.clone()).await.unwrap();
    sink.write("messages", &messages("exp-schema", 0, 10)).await.unwrap();
    sink.close().await.unwrap();
    let path = sink::archive_path(dir.path(), sink::Table::Messages, "exp-schema");
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(8).position(|w| w == b"\"exp_id\"").expect("the schema names exp_id");
    let mut renamed = bytes.clone();
    renamed[at..at + 8].copy_from_slice(b"\"exp_ix\"");
    std::fs::write(&path, &renamed).unwrap();

    let sink = Sink::open(archive).await.unwrap();
    let err = sink.write("messages", &messages("exp-schema", 10, 10)).await.unwrap_err();
    assert!(err.code() == ErrorCode::CorruptArchive && err.to_string().contains("schema"), "{err}");
    let err = import_archive(dir.path(), DSN, &options(DSN, &fresh_schema("schema"))).await.unwrap_err();
    assert!(err.code() == ErrorCode::CorruptArchive && err.to_string().contains("schema"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), renamed, "the file is left as it was");
}

/// Damage inside a file (here a sync marker) with whole blocks after it is not a torn tail:
/// neither the sink nor import may cut those blocks off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_with_whole_blocks_after_it_is_reported_not_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let archive = SinkOptions { dir: Some(dir.path().into()), batch_rows: 200, ..Default::default() };
    let sink = Sink::open(archive.clone()).await.unwrap();
    for block in 0..3 {
        sink.write("messages", &messages("exp-damaged", block * 200, 200)).await.unwrap();
    }
    sink.close().await.unwrap();
    let path = sink::archive_path(dir.path(), sink::Table::Messages, "exp-damaged");
    let mut bytes = std::fs::read(&path).unwrap();
    // The file ends with its sync marker, which is also the header's last 16 bytes.
    let sync = bytes[bytes.len() - 16..].to_vec();
    let marks: Vec<usize> = bytes.windows(16).enumerate().filter(|(_, w)| *w == &sync[..]).map(|(at, _)| at).collect();
    assert_eq!(marks.len(), 4, "the header's marker and three blocks'");
    bytes[marks[1]] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let sink = Sink::open(archive).await.unwrap();
    let err = sink.write("messages", &messages("exp-damaged", 600, 10)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::CorruptArchive, "{err}");
    // Named connections, to see that the failed import leaves none open.
    let schema = fresh_schema("damaged");
    let named = format!("{DSN}?application_name={schema}");
    let err = import_archive(dir.path(), &named, &options(&named, &schema)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::CorruptArchive, "{err}");
    let open = query_i64(DSN, format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{schema}'")).await;
    assert_eq!(open, 0, "connections the failed import left open");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is left as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_torn_by_a_crash_is_cut_back_to_its_whole_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let archive = SinkOptions { dir: Some(dir.path().into()), batch_rows: 200, ..Default::default() };
    let sink = Sink::open(archive.clone()).await.unwrap();
    sink.write("messages", &messages("exp-torn", 0, 500)).await.unwrap();
    sink.close().await.unwrap();
    // What a crash mid-block leaves: a block head announcing 200 rows of 9,000 bytes, then 30 bytes.
    let path = sink::archive_path(dir.path(), sink::Table::Messages, "exp-torn");
    let mut torn = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut torn, &[0x90, 0x03, 0xb0, 0x8c, 0x01]).unwrap();
    std::io::Write::write_all(&mut torn, &[7u8; 30]).unwrap();
    drop(torn);
    assert!(
        apache_avro::Reader::new(std::fs::File::open(&path).unwrap()).unwrap().any(|r| r.is_err()),
        "the torn file should not read cleanly"
    );
    let sink = Sink::open(archive).await.unwrap();
    sink.write("messages", &messages("exp-torn", 500, 500)).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(archived_messages(dir.path(), "exp-torn").len(), 1000);
}

/// A PostgreSQL of the test's own, so it can be killed and restarted.
struct OwnPostgres {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (apt install postgresql)")
            .map(|e| e.unwrap().path().join("bin"))
            .find(|p| p.join("postgres").exists())
            .expect("a postgres binary");
        let data = tempfile::Builder::new().prefix("myriad-pg").tempdir().unwrap();
        // PostgreSQL refuses to run as root: run it as the postgres user.
        Command::new("chown").args(["-R", "postgres:postgres"]).arg(data.path()).status().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let status =
            as_postgres(&bin.join("initdb"), &["-D", &data.path().join("db").to_string_lossy(), "-A", "trust", "-U", "root", "--no-sync"])
                .status()
                .unwrap();
        assert!(status.success(), "initdb failed");
        let pg = OwnPostgres { bin, data, port };
        pg.run();
        pg
    }

    fn run(&self) {
        let db = self.data.path().join("db");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.data.path().display());
        let status = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &db.to_string_lossy(), "-o", &opts, "-w", "-l", &self.data.path().join("log").to_string_lossy(), "start"],
        )
        .status()
        .unwrap();
        assert!(status.success(), "pg_ctl start failed");
    }

    /// A crash, as far as the server knows: no checkpoint, connections cut.
    fn kill(&self) {
        let db = self.data.path().join("db");
        let status = as_postgres(&self.bin.join("pg_ctl"), &["-D", &db.to_string_lossy(), "-m", "immediate", "stop"]).status().unwrap();
        assert!(status.success());
    }

    fn dsn(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"), &["-D", &self.data.path().join("db").to_string_lossy(), "-m", "immediate", "stop"])
            .status();
    }
}

fn as_postgres(program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program).args(args).current_dir("/tmp");
    c.stdout(std::process::Stdio::null());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_run_loses_and_doubles_nothing() {
    let pg = OwnPostgres::start();
    let dsn = pg.dsn();
    let sink = Arc::new(Sink::open(SinkOptions { batch_rows: 1000, ..options(&dsn, "myriad") }).await.unwrap());
    let writer = write_in_the_background(sink.clone(), "exp-r", 100, 10);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = sink.stats();
    pg.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    pg.run();
    writer.await.unwrap().unwrap();
    let stats = sink.stats();
    assert!(before.written > 0 && before.written < 100_000, "the restart did not fall mid-run: {before:?}");
    assert!(stats.retries > 0, "{stats:?}");
    assert_eq!(counts(&dsn, "myriad").await, (100_000, 100_000));
    sink.close().await.unwrap();
}
