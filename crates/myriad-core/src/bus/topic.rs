//! The topic layout of this field (AgentSociety, seeds/000): `exps/<exp>/agents/<agent>/<kind>`,
//! and the checks that keep ids safe inside it.

use crate::{Error, Result};

/// The three message kinds, each its own topic level (and its own default QoS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    AgentChat = 0,
    UserChat = 1,
    UserSurvey = 2,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::AgentChat, Kind::UserChat, Kind::UserSurvey];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AgentChat => "agent-chat",
            Kind::UserChat => "user-chat",
            Kind::UserSurvey => "user-survey",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn from_index(i: u8) -> Option<Kind> {
        Kind::ALL.get(i as usize).copied()
    }
}

/// Ids are one topic level: bounded, and free of the characters MQTT gives meaning to.
pub const MAX_ID_BYTES: usize = 128;

/// Checks an experiment, agent or client id; the error names `what` and says what is wrong.
pub fn validate_id(what: &str, id: &str) -> Result<()> {
    let problem = if id.is_empty() {
        Some("is empty".to_string())
    } else if id.len() > MAX_ID_BYTES {
        Some(format!("is {} bytes long (at most {MAX_ID_BYTES})", id.len()))
    } else {
        id.chars()
            .find(|c| matches!(c, '/' | '+' | '#') || c.is_control())
            .map(|c| format!("contains {c:?} (ids may not contain '/', '+', '#' or control characters)"))
    };
    match problem {
        Some(p) => Err(Error::InvalidTopic(format!("{what} {id:?} {p}"))),
        None => Ok(()),
    }
}

pub fn topic(exp: &str, agent: &str, kind: Kind) -> String {
    format!("exps/{exp}/agents/{agent}/{}", kind.as_str())
}

/// The per-agent subscription: every kind addressed to `agent`.
pub fn agent_filter(exp: &str, agent: &str) -> String {
    format!("exps/{exp}/agents/{agent}/#")
}

/// The group wildcard: every agent of the experiment (demultiplexed locally).
pub fn experiment_filter(exp: &str) -> String {
    format!("exps/{exp}/agents/#")
}

/// `(exp, agent, kind)` of a topic in the layout, or `None` for any other topic.
pub fn parse_topic(topic: &str) -> Option<(&str, &str, Kind)> {
    let rest = topic.strip_prefix("exps/")?;
    let (exp, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("agents/")?;
    let (agent, kind) = rest.split_once('/')?;
    if exp.is_empty() || agent.is_empty() {
        return None;
    }
    Some((exp, agent, Kind::parse(kind)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn topics_round_trip() {
        for kind in Kind::ALL {
            let t = topic("e1", "a-7", kind);
            assert_eq!(parse_topic(&t), Some(("e1", "a-7", kind)));
        }
        assert_eq!(parse_topic("exps/e1/agents/a/other"), None);
        assert_eq!(parse_topic("exps/e1/people/a/agent-chat"), None);
        assert_eq!(parse_topic("exps//agents/a/agent-chat"), None);
    }

    #[test]
    fn ids_with_mqtt_syntax_are_refused() {
        for bad in ["", "a/b", "a+", "#", "a\nb", &"x".repeat(MAX_ID_BYTES + 1)] {
            let e = validate_id("agent id", bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidTopic, "{bad:?}");
        }
        validate_id("agent id", "550e8400-e29b-41d4-a716-446655440000").unwrap();
        validate_id("agent id", "代理-1").unwrap();
    }
}
