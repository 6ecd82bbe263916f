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
    assert_eq!(applied.iter().filter(|a| a == &&vec![1, 2, 3]).count(), 1, "{applied:?}");
    assert_eq!(applied.iter().filter(|a| a.is_empty()).count(), 2, "{applied:?}");
    assert!(sink::migrate(DSN, &schema).await.unwrap().is_empty());
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.myriad_migrations")).await, 3);
    assert_columns_match(&schema).await;
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
    let err = sink::read_archive(dir.path(), sink::Table::Messages, None).await.unwrap_err();
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
    let read = sink::read_archive(dir.path(), sink::Table::Messages, Some("exp-torn")).await.unwrap();
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&read).unwrap().len(), 500, "the torn block is left out");
    let sink = Sink::open(archive).await.unwrap();
    sink.write("messages", &messages("exp-torn", 500, 500)).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(archived_messages(dir.path(), "exp-torn").len(), 1000);
}

/// Each table's columns in Postgres (name, type, nullable) are the sink's, in order.
async fn assert_columns_match(schema: &str) {
    let mut conn = PgConnection::connect(DSN).await.unwrap();
    for table in sink::TABLES {
        let sql = format!(
            "SELECT column_name::text, udt_name::text, is_nullable::text FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = '{}' ORDER BY ordinal_position",
            table.name()
        );
        let found: Vec<(String, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap();
        let expected: Vec<(String, String, String)> =
            table.columns().iter().map(|c| (c.name.into(), c.ty.sql_name().into(), if c.nullable { "YES" } else { "NO" }.into())).collect();
        assert_eq!(found, expected, "table {}", table.name());
    }
}

/// Two LLM calls of one agent in one tick: one answered, one that timed out (its nullable columns null).
const LLM_CALLS: &str = r#"[
    {"exp_id":"exp-llm","agent_id":"a1","tick":3,"call_index":0,"ts":1795960800250,"model":"gpt-x","request_hash":"h0","request":{"messages":[{"role":"user","content":"hi"}]},"response":{"text":"hello"},"prompt_tokens":12,"completion_tokens":5,"latency_ms":812.5,"outcome":"ok"},
    {"exp_id":"exp-llm","agent_id":"a1","tick":3,"call_index":1,"ts":1795960800999,"model":null,"request_hash":"h1","request":{"messages":[]},"response":null,"prompt_tokens":null,"completion_tokens":null,"latency_ms":29999.5,"outcome":"timeout"}
]"#;

type StoredCall = (String, i64, i64, i64, Option<String>, String, Option<String>, Option<String>, Option<i64>, Option<i64>, f64, String);

/// [`LLM_CALLS`] as Postgres holds them (ts as epoch ms, jsonb by a value inside).
fn expected_calls() -> Vec<StoredCall> {
    let a1 = || "a1".to_string();
    vec![
        (
            a1(),
            3,
            0,
            1_795_960_800_250,
            Some("gpt-x".into()),
            "h0".into(),
            Some("hi".into()),
            Some("hello".into()),
            Some(12),
            Some(5),
            812.5,
            "ok".into(),
        ),
        (a1(), 3, 1, 1_795_960_800_999, None, "h1".into(), None, None, None, None, 29999.5, "timeout".into()),
    ]
}

async fn stored_calls(schema: &str) -> Vec<StoredCall> {
    let mut conn = PgConnection::connect(DSN).await.unwrap();
    let sql = format!(
        "SELECT agent_id, tick, call_index, (extract(epoch FROM ts) * 1000)::bigint, model, request_hash, request->'messages'->0->>'content', response->>'text', prompt_tokens, completion_tokens, latency_ms, outcome FROM {schema}.llm_calls ORDER BY call_index"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap()
}

async fn ticks(schema: &str, table: &str) -> Vec<Option<i64>> {
    let mut conn = PgConnection::connect(DSN).await.unwrap();
    let sql = format!("SELECT tick FROM {schema}.{table} ORDER BY ts");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_and_llm_calls_land_in_postgres_and_a_tick_must_be_an_integer() {
    let schema = fresh_schema("tick");
    let sink = Sink::open(options(DSN, &schema)).await.unwrap();
    assert_columns_match(&schema).await;
    let states = r#"[
        {"exp_id":"exp-llm","agent_id":"a","ts":1,"state":{},"tick":-1},
        {"exp_id":"exp-llm","agent_id":"a","ts":2,"state":{},"tick":9007199254740991},
        {"exp_id":"exp-llm","agent_id":"a","ts":3,"state":{}},
        {"exp_id":"exp-llm","agent_id":"a","ts":4,"state":{},"tick":1.5},
        {"exp_id":"exp-llm","agent_id":"a","ts":5,"state":{},"tick":"7"},
        {"exp_id":"exp-llm","agent_id":"a","ts":6,"state":{},"tick":9007199254740992}
    ]"#;
    let out = sink.write("states", states).await.unwrap();
    assert_eq!(out.accepted, 3);
    let reasons: Vec<_> = out.rejected.iter().map(|r| (r.index, r.reason.as_str())).collect();
    assert_eq!(
        reasons,
        [
            (3, "`tick`: expected an integer, got 1.5"),
            (4, r#"`tick`: expected an integer, got "7""#),
            (5, "`tick`: 9007199254740992 is outside the integers a JS number holds exactly (at most 2^53 - 1 in magnitude)"),
        ]
    );
    assert_eq!(sink.write("llm_calls", LLM_CALLS).await.unwrap().accepted, 2);
    sink.close().await.unwrap();
    assert_eq!(ticks(&schema, "states").await, [Some(-1), Some(9_007_199_254_740_991), None]);
    assert_eq!(stored_calls(&schema).await, expected_calls());
    // llm_calls is partitioned by experiment like the other tables.
    let partition = sink::partition_name(sink::Table::LlmCalls, "exp-llm");
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.{partition}")).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_and_llm_calls_round_trip_through_the_archive_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::open(SinkOptions { dir: Some(dir.path().into()), ..Default::default() }).await.unwrap();
    assert_eq!(sink.write("llm_calls", LLM_CALLS).await.unwrap().accepted, 2);
    let messages = r#"[
        {"exp_id":"exp-llm","src":"a1","ts":1,"payload":{"n":1},"tick":-1},
        {"exp_id":"exp-llm","src":"a1","ts":"1970-01-01T00:00:00.002500Z","payload":{"n":2},"tick":4},
        {"exp_id":"exp-llm","src":"a1","ts":3,"payload":{"n":3}}
    ]"#;
    assert_eq!(sink.write("messages", messages).await.unwrap().accepted, 3);
    sink.close().await.unwrap();

    let read = |table, exp: Option<&'static str>| {
        let dir = dir.path().to_owned();
        async move { serde_json::from_str::<serde_json::Value>(&sink::read_archive(&dir, table, exp).await.unwrap()).unwrap() }
    };
    assert_eq!(read(sink::Table::LlmCalls, Some("exp-llm")).await, serde_json::from_str::<serde_json::Value>(LLM_CALLS).unwrap());
    let row = |ts: serde_json::Value, n: i64, tick: serde_json::Value| serde_json::json!({"exp_id":"exp-llm","msg_id":null,"src":"a1","dst":null,"kind":null,"ts":ts,"payload":{"n":n},"tick":tick});
    let expected =
        serde_json::json!([row(1.into(), 1, (-1).into()), row(2.5.into(), 2, 4.into()), row(3.into(), 3, serde_json::Value::Null)]);
    assert_eq!(read(sink::Table::Messages, None).await, expected);
    assert_eq!(read(sink::Table::Messages, Some("exp-other")).await, serde_json::json!([]));
    assert_eq!(read(sink::Table::States, None).await, serde_json::json!([]));
    let missing = sink::read_archive(&dir.path().join("missing"), sink::Table::Messages, Some("exp-llm")).await.unwrap_err();
    assert_eq!(missing.code(), ErrorCode::Io, "{missing}");

    let schema = fresh_schema("tickimport");
    let report = import_archive(dir.path(), DSN, &options(DSN, &schema)).await.unwrap();
    assert_eq!((report.files, report.rows), (2, 5));
    assert_eq!(ticks(&schema, "messages").await, [Some(-1), Some(4), None]);
    assert_eq!(stored_calls(&schema).await, expected_calls());
}

/// An archive file written before the tick column (here states, under its old schema) is refused
/// by the sink, import and read_archive alike, naming both column lists; it is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_file_of_the_version_before_the_tick_is_refused_naming_the_columns() {
    use apache_avro::types::Value;
    let dir = tempfile::tempdir().unwrap();
    let old = serde_json::json!({"type": "record", "name": "states", "namespace": "myriad", "fields": [
        {"name": "exp_id", "type": "string"},
        {"name": "agent_id", "type": "string"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "state", "type": {"type": "string", "sqlType": "jsonb"}},
    ]});
    let schema = apache_avro::Schema::parse_str(&old.to_string()).unwrap();
    let mut writer = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    writer.add_user_metadata("myriad.table".into(), "states").unwrap();
    writer.add_user_metadata("myriad.exp_id".into(), "exp-old").unwrap();
    let record = |k: &str, v: Value| (k.to_string(), v);
    writer
        .append_value(Value::Record(vec![
            record("exp_id", Value::String("exp-old".into())),
            record("agent_id", Value::String("a".into())),
            record("ts", Value::TimestampMicros(1_000)),
            record("state", Value::String("{}".into())),
        ]))
        .unwrap();
    let bytes = writer.into_inner().unwrap();
    let path = sink::archive_path(dir.path(), sink::Table::States, "exp-old");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();

    let named = "its columns are (exp_id, agent_id, ts, state), this version's are (exp_id, agent_id, ts, state, tick)";
    let sink = Sink::open(SinkOptions { dir: Some(dir.path().into()), ..Default::default() }).await.unwrap();
    let state = r#"[{"exp_id":"exp-old","agent_id":"a","ts":2,"state":{},"tick":0}]"#;
    let errors = [
        sink.write("states", state).await.unwrap_err(),
        import_archive(dir.path(), DSN, &options(DSN, &fresh_schema("oldarchive"))).await.unwrap_err(),
        sink::read_archive(dir.path(), sink::Table::States, None).await.unwrap_err(),
    ];
    for err in errors {
        assert!(err.code() == ErrorCode::CorruptArchive && err.to_string().contains(named), "{err}");
    }
    sink.close().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is left as it was");
}

/// A database that migration 1 alone made, with rows in it (what the version before the tick
/// column left): migration 2 adds the tick columns and llm_calls and leaves the rows as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_a_version_1_database_adds_ticks_and_llm_calls_without_touching_its_rows() {
    let schema = fresh_schema("v1");
    let s = format!("\"{schema}\"");
    let v1 = &sink::MIGRATIONS[0];
    assert_eq!(v1.version, 1);
    let mut statements = vec![
        format!("CREATE SCHEMA {s}"),
        format!("CREATE TABLE {s}.myriad_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"),
    ];
    statements.extend(v1.statements.iter().map(|statement| statement.replace("{s}", &s)));
    statements.push(format!("INSERT INTO {s}.myriad_migrations (version, name) VALUES (1, '{}')", v1.name));
    let partition = sink::partition_name(sink::Table::Messages, "exp-old");
    statements.push(format!("CREATE TABLE {s}.\"{partition}\" PARTITION OF {s}.messages FOR VALUES IN ('exp-old')"));
    statements.push(format!(
        "INSERT INTO {s}.messages (exp_id, src, ts, payload) SELECT 'exp-old', 'agent-' || i, to_timestamp(i), jsonb_build_object('n', i) FROM generate_series(1, 100) i"
    ));
    execute(statements.join("; ")).await;
    let before = query_i64(
        DSN,
        format!(
            "SELECT count(*) FROM {schema}.messages WHERE src = 'agent-' || (payload->>'n') AND ts = to_timestamp((payload->>'n')::int)"
        ),
    )
    .await;
    assert_eq!(before, 100);

    assert_eq!(sink::migrate(DSN, &schema).await.unwrap(), vec![2, 3]);
    assert_columns_match(&schema).await;
    let kept = query_i64(DSN, format!("SELECT count(*) FROM {schema}.messages WHERE src = 'agent-' || (payload->>'n') AND ts = to_timestamp((payload->>'n')::int) AND tick IS NULL")).await;
    assert_eq!(kept, 100, "the rows of before, unchanged and without a tick");
    let indexes =
        query_i64(DSN, format!("SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'llm_calls'")).await;
    assert_eq!(indexes, 2);

    // The sink writes ticks into the old partition, and LLM calls.
    let sink = Sink::open(options(DSN, &schema)).await.unwrap();
    let new = r#"[{"exp_id":"exp-old","src":"agent-new","ts":"2100-01-01T00:00:00Z","payload":{},"tick":7}]"#;
    assert_eq!(sink.write("messages", new).await.unwrap().accepted, 1);
    assert_eq!(sink.write("llm_calls", LLM_CALLS).await.unwrap().accepted, 2);
    sink.close().await.unwrap();
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.\"{partition}\" WHERE tick = 7")).await, 1);
    assert_eq!(query_i64(DSN, format!("SELECT count(*) FROM {schema}.messages WHERE tick IS NULL")).await, 100);
    assert_eq!(stored_calls(&schema).await, expected_calls());
    assert!(sink::migrate(DSN, &schema).await.unwrap().is_empty());
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
