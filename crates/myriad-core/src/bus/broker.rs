//! The embedded broker: `rumqttd` in this process, on free loopback ports (one for MQTT 3.1.1, one
//! for MQTT 5), started on first use and shared by every bus of the process that names no URL.
//! rumqttd has no shutdown API, so it lives as long as the process.
//!
//! Configured not to drop: QoS 1/2 messages for a slow subscriber wait in the router's commit log
//! (segments of 100 MiB, up to 64 of them) instead of falling off a short queue.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use super::Protocol;
use crate::{Error, Result};

struct Ports {
    v311: u16,
    v5: u16,
}

static PORTS: OnceLock<std::result::Result<Ports, String>> = OnceLock::new();

/// `mqtt://127.0.0.1:<port>` of the embedded broker's listener for `protocol`, starting it if needed.
pub fn embedded_broker_url(protocol: Protocol) -> Result<String> {
    let ports = PORTS.get_or_init(start).as_ref().map_err(|e| Error::BusConnect(format!("embedded broker: {e}")))?;
    let port = match protocol {
        Protocol::V311 => ports.v311,
        Protocol::V5 => ports.v5,
    };
    Ok(format!("mqtt://127.0.0.1:{port}"))
}

/// Whether `url` is one of the embedded broker's (started or not: one not started is no one's).
pub(crate) fn is_embedded_broker_url(url: &str) -> bool {
    match PORTS.get() {
        Some(Ok(ports)) => [ports.v311, ports.v5].iter().any(|port| url.trim_end_matches('/') == format!("mqtt://127.0.0.1:{port}")),
        _ => false,
    }
}

fn start() -> std::result::Result<Ports, String> {
    let ports = Ports { v311: free_port()?, v5: free_port()? };
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 256 * 1024 * 1024,
        max_inflight_count: 1024,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = |name: &str, port: u16| {
        let settings = ServerSettings {
            name: name.to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            tls: None,
            next_connection_delay_ms: 0,
            connections: connections.clone(),
        };
        Some(HashMap::from([(name.to_string(), settings)]))
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100_000,
            max_outgoing_packet_count: 1024,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 64,
            ..Default::default()
        },
        v4: server("myriad-v311", ports.v311),
        v5: server("myriad-v5", ports.v5),
        ..Default::default()
    };
    std::thread::Builder::new()
        .name("myriad-broker".into())
        .spawn(move || {
            // start() blocks for the life of the broker.
            if let Err(e) = Broker::new(config).start() {
                eprintln!("myriad: the embedded broker stopped: {e}");
            }
        })
        .map_err(|e| e.to_string())?;
    for port in [ports.v311, ports.v5] {
        wait_for_listener(port)?;
    }
    Ok(ports)
}

/// A port the OS says is free now (bound and released; the broker binds it right after).
fn free_port() -> std::result::Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_for_listener(port: u16) -> std::result::Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!("nothing listens on 127.0.0.1:{port} after 5 s"))
}
