//! The two MQTT protocol versions behind one small interface, so the driver (mqtt.rs) is written
//! once. rumqttc has separate types for 3.1.1 and 5; each impl here maps them to [`WireEvent`].
//! Under 5 the envelope travels as user properties, under 3.1.1 as a payload header (envelope.rs).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::envelope::Envelope;
use super::Qos;

/// What the driver needs to know from one `poll` of the event loop.
pub(crate) enum WireEvent {
    /// `receive_max`: how many unacknowledged QoS 1/2 publishes the broker accepts (MQTT 5).
    ConnAck {
        session_present: bool,
        receive_max: Option<u16>,
    },
    /// `acked`: QoS 1/2 (counted towards the sender's credit, see credit.rs).
    Message {
        topic: String,
        payload: Bytes,
        envelope: Option<Envelope>,
        acked: bool,
    },
    /// A QoS 0 publish (pkid 0) or a QoS 1/2 publish with its packet id was written.
    PublishWritten(u16),
    /// PUBACK (QoS 1) or PUBCOMP (QoS 2): the broker owns the message. `routed`: false when the
    /// broker said no subscription matched (MQTT 5), so no receiver will ever count it.
    Acked {
        pkid: u16,
        routed: bool,
    },
    /// An MQTT 5 PUBACK/PUBCOMP with a failure reason: the broker did not take the message.
    Refused {
        pkid: u16,
        reason: String,
    },
    SubAck {
        refused: usize,
    },
    DisconnectWritten,
    Other,
}

/// Connection settings common to both versions.
pub(crate) struct WireConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub keep_alive: Duration,
    pub persistent: bool,
    pub session_expiry_s: u32,
    pub credentials: Option<(String, String)>,
    pub tls: Option<rumqttc::TlsConfiguration>,
    pub max_packet: usize,
    pub inflight: u16,
    pub channel_capacity: usize,
}

pub(crate) trait Wire: Send + 'static {
    type Client: Clone + Send + Sync + 'static;
    type Loop: Send + 'static;
    type Request: Send + 'static;

    fn open(cfg: &WireConfig) -> (Self::Client, Self::Loop);
    fn poll(lp: &mut Self::Loop) -> impl Future<Output = Result<WireEvent, String>> + Send;
    /// Requests rumqttc would retransmit: taken out after a connection error, because rumqttc drops
    /// them when the broker answers with a fresh session (session_present = false).
    fn take_pending(lp: &mut Self::Loop) -> Vec<Self::Request>;
    /// The packet id of a QoS 1/2 publish request that already has one (a retransmission).
    fn retransmit_pkid(request: &Self::Request) -> Option<u16>;
    /// Queues subscriptions first, then `requests`, ahead of anything new.
    fn restore_pending(lp: &mut Self::Loop, subscribe: &[(String, Qos)], requests: Vec<Self::Request>) -> usize;
    fn publish(
        client: &Self::Client,
        topic: String,
        qos: Qos,
        payload: Bytes,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// A QoS 0 publish without an envelope (credit reports).
    fn publish_plain(client: &Self::Client, topic: String, payload: Bytes) -> impl Future<Output = Result<(), String>> + Send;
    fn disconnect(client: &Self::Client) -> impl Future<Output = Result<(), String>> + Send;
}

/// Subscriptions go out in packets of this many filters.
const FILTERS_PER_SUBSCRIBE: usize = 200;

pub(crate) struct V311;

impl Wire for V311 {
    type Client = rumqttc::AsyncClient;
    type Loop = rumqttc::EventLoop;
    type Request = rumqttc::Request;

    fn open(cfg: &WireConfig) -> (Self::Client, Self::Loop) {
        let mut o = rumqttc::MqttOptions::new(&cfg.client_id, &cfg.host, cfg.port);
        o.set_keep_alive(cfg.keep_alive)
            .set_clean_session(!cfg.persistent)
            .set_max_packet_size(cfg.max_packet, cfg.max_packet)
            .set_inflight(cfg.inflight);
        if let Some((user, password)) = &cfg.credentials {
            o.set_credentials(user, password);
        }
        if let Some(tls) = &cfg.tls {
            o.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
        }
        let (client, mut lp) = rumqttc::AsyncClient::new(o, cfg.channel_capacity);
        lp.set_network_options(network_options());
        (client, lp)
    }

    async fn poll(lp: &mut Self::Loop) -> Result<WireEvent, String> {
        use rumqttc::{Event, Outgoing, Packet, SubscribeReasonCode};
        Ok(match lp.poll().await.map_err(|e| e.to_string())? {
            Event::Incoming(Packet::ConnAck(c)) => WireEvent::ConnAck { session_present: c.session_present, receive_max: None },
            Event::Incoming(Packet::Publish(p)) => {
                let acked = p.qos != rumqttc::QoS::AtMostOnce;
                let (envelope, payload) = Envelope::strip(p.payload);
                WireEvent::Message { topic: p.topic, payload, envelope, acked }
            }
            Event::Incoming(Packet::PubAck(a)) => WireEvent::Acked { pkid: a.pkid, routed: true },
            Event::Incoming(Packet::PubComp(c)) => WireEvent::Acked { pkid: c.pkid, routed: true },
            Event::Incoming(Packet::SubAck(s)) => {
                WireEvent::SubAck { refused: s.return_codes.iter().filter(|c| matches!(c, SubscribeReasonCode::Failure)).count() }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => WireEvent::PublishWritten(pkid),
            Event::Outgoing(Outgoing::Disconnect) => WireEvent::DisconnectWritten,
            _ => WireEvent::Other,
        })
    }

    fn take_pending(lp: &mut Self::Loop) -> Vec<Self::Request> {
        lp.pending.drain(..).collect()
    }

    fn retransmit_pkid(request: &Self::Request) -> Option<u16> {
        match request {
            rumqttc::Request::Publish(p) if p.pkid != 0 => Some(p.pkid),
            _ => None,
        }
    }

    fn restore_pending(lp: &mut Self::Loop, subscribe: &[(String, Qos)], requests: Vec<Self::Request>) -> usize {
        let packets: Vec<_> = subscribe
            .chunks(FILTERS_PER_SUBSCRIBE)
            .map(|chunk| {
                let filters = chunk.iter().map(|(f, q)| rumqttc::SubscribeFilter::new(f.clone(), qos_v4(*q)));
                rumqttc::Request::Subscribe(rumqttc::Subscribe::new_many(filters))
            })
            .collect();
        let n = packets.len();
        for request in requests.into_iter().rev().chain(packets.into_iter().rev()) {
            lp.pending.push_front(request);
        }
        n
    }

    async fn publish(client: &Self::Client, topic: String, qos: Qos, payload: Bytes, envelope: &Envelope) -> Result<(), String> {
        client.publish_bytes(topic, qos_v4(qos), false, envelope.prefix(&payload)).await.map_err(|e| e.to_string())
    }

    async fn publish_plain(client: &Self::Client, topic: String, payload: Bytes) -> Result<(), String> {
        client.publish_bytes(topic, rumqttc::QoS::AtMostOnce, false, payload).await.map_err(|e| e.to_string())
    }

    async fn disconnect(client: &Self::Client) -> Result<(), String> {
        client.disconnect().await.map_err(|e| e.to_string())
    }
}

pub(crate) struct V5;

impl Wire for V5 {
    type Client = rumqttc::v5::AsyncClient;
    type Loop = rumqttc::v5::EventLoop;
    type Request = rumqttc::v5::Request;

    fn open(cfg: &WireConfig) -> (Self::Client, Self::Loop) {
        let mut o = rumqttc::v5::MqttOptions::new(&cfg.client_id, &cfg.host, cfg.port);
        o.set_keep_alive(cfg.keep_alive)
            .set_clean_start(!cfg.persistent)
            .set_max_packet_size(Some(cfg.max_packet as u32))
            .set_outgoing_inflight_upper_limit(cfg.inflight)
            // Said out loud, though 65,535 is what leaving it out means: Mosquitto reads a missing
            // one as its own `max_inflight_messages` (20 by default) and queues the rest for us,
            // dropping past `max_queued_messages` (1,000) when we fall behind. In flight, they wait
            // in its send buffer instead. Our bound is the inbox: when it is full we stop reading
            // the socket. rumqttc acknowledges each publish as it reads it.
            .set_receive_maximum(Some(u16::MAX));
        if cfg.persistent {
            o.set_session_expiry_interval(Some(cfg.session_expiry_s));
        }
        if let Some((user, password)) = &cfg.credentials {
            o.set_credentials(user, password);
        }
        if let Some(tls) = &cfg.tls {
            o.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
        }
        o.set_network_options(network_options());
        rumqttc::v5::AsyncClient::new(o, cfg.channel_capacity)
    }

    async fn poll(lp: &mut Self::Loop) -> Result<WireEvent, String> {
        use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PubCompReason, SubscribeReasonCode};
        use rumqttc::v5::Event;
        use rumqttc::Outgoing;
        Ok(match lp.poll().await.map_err(|e| e.to_string())? {
            Event::Incoming(Packet::ConnAck(c)) => {
                WireEvent::ConnAck { session_present: c.session_present, receive_max: c.properties.as_ref().and_then(|p| p.receive_max) }
            }
            Event::Incoming(Packet::Publish(p)) => {
                let topic = String::from_utf8_lossy(&p.topic).into_owned();
                let acked = p.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce;
                match p.properties.as_ref().and_then(|props| Envelope::from_user_properties(&props.user_properties)) {
                    Some(envelope) => WireEvent::Message { topic, payload: p.payload, envelope: Some(envelope), acked },
                    // A 3.1.1 sender's envelope is a header in the payload.
                    None => {
                        let (envelope, payload) = Envelope::strip(p.payload);
                        WireEvent::Message { topic, payload, envelope, acked }
                    }
                }
            }
            Event::Incoming(Packet::PubAck(a)) => match a.reason {
                PubAckReason::Success => WireEvent::Acked { pkid: a.pkid, routed: true },
                PubAckReason::NoMatchingSubscribers => WireEvent::Acked { pkid: a.pkid, routed: false },
                reason => WireEvent::Refused { pkid: a.pkid, reason: format!("{reason:?}") },
            },
            Event::Incoming(Packet::PubComp(c)) => match c.reason {
                PubCompReason::Success => WireEvent::Acked { pkid: c.pkid, routed: true },
                reason => WireEvent::Refused { pkid: c.pkid, reason: format!("{reason:?}") },
            },
            Event::Incoming(Packet::SubAck(s)) => {
                WireEvent::SubAck { refused: s.return_codes.iter().filter(|c| !matches!(c, SubscribeReasonCode::Success(_))).count() }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => WireEvent::PublishWritten(pkid),
            Event::Outgoing(Outgoing::Disconnect) => WireEvent::DisconnectWritten,
            _ => WireEvent::Other,
        })
    }

    fn take_pending(lp: &mut Self::Loop) -> Vec<Self::Request> {
        lp.pending.drain(..).collect()
    }

    fn retransmit_pkid(request: &Self::Request) -> Option<u16> {
        match request {
            rumqttc::v5::Request::Publish(p) if p.pkid != 0 => Some(p.pkid),
            _ => None,
        }
    }

    fn restore_pending(lp: &mut Self::Loop, subscribe: &[(String, Qos)], requests: Vec<Self::Request>) -> usize {
        use rumqttc::v5::mqttbytes::v5::{Filter, Subscribe};
        let packets: Vec<_> = subscribe
            .chunks(FILTERS_PER_SUBSCRIBE)
            .map(|chunk| {
                let filters = chunk.iter().map(|(f, q)| Filter::new(f.clone(), qos_v5(*q)));
                rumqttc::v5::Request::Subscribe(Subscribe::new_many(filters, None))
            })
            .collect();
        let n = packets.len();
        for request in requests.into_iter().rev().chain(packets.into_iter().rev()) {
            lp.pending.push_front(request);
        }
        n
    }

    async fn publish(client: &Self::Client, topic: String, qos: Qos, payload: Bytes, envelope: &Envelope) -> Result<(), String> {
        let props = rumqttc::v5::mqttbytes::v5::PublishProperties { user_properties: envelope.to_user_properties(), ..Default::default() };
        client.publish_bytes_with_properties(topic, qos_v5(qos), false, payload, props).await.map_err(|e| e.to_string())
    }

    async fn publish_plain(client: &Self::Client, topic: String, payload: Bytes) -> Result<(), String> {
        let qos = rumqttc::v5::mqttbytes::QoS::AtMostOnce;
        client.publish_bytes(topic, qos, false, payload).await.map_err(|e| e.to_string())
    }

    async fn disconnect(client: &Self::Client) -> Result<(), String> {
        client.disconnect().await.map_err(|e| e.to_string())
    }
}

/// TCP_NODELAY: small packets (acks, short messages) go out at once instead of waiting for Nagle
/// to coalesce them against the peer's delayed ACK (40 ms stalls with brokers that do not set it).
fn network_options() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}

fn qos_v4(q: Qos) -> rumqttc::QoS {
    match q {
        Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
        Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        Qos::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos_v5(q: Qos) -> rumqttc::v5::mqttbytes::QoS {
    match q {
        Qos::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        Qos::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        Qos::ExactlyOnce => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}
