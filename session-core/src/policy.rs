//! What to do with an incoming call, chosen by configuration (the seeds' builder policies
//! for incoming calls). The variants and the default follow the seed design; in a route of
//! the cluster's dial plan an absent policy means `AcceptAll` (the route itself is the
//! decision to take the call).

use serde::Deserialize;

/// How incoming calls are handled automatically.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum IncomingCallPolicy {
    /// Reject every call with `603 Decline`.
    RejectAll,
    /// Reject with `486 Busy Here` when the callee is already on a call.
    RejectWhenBusy,
    /// Accept every call.
    AcceptAll,
    /// Accept calls from listed domains or users (`user@domain`), reject others with
    /// `403 Forbidden`.
    AcceptWhitelist {
        #[serde(default, alias = "domains")]
        allowed_domains: Vec<String>,
        #[serde(default, alias = "users")]
        allowed_users: Vec<String>,
    },
    /// Someone must decide: a registered handler (an application) accepts or rejects each
    /// call; with none, the call is refused (`480`).
    #[default]
    RequireManual,
    /// Keep the call waiting (ringing) up to `timeout_secs`; when nobody took it by then, do
    /// `on_timeout`.
    QueueWithTimeout {
        #[serde(alias = "secs")]
        timeout_secs: u32,
        #[serde(default)]
        on_timeout: TimeoutAction,
    },
}

/// What a queued call becomes when its time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutAction {
    /// `480 Temporarily Unavailable`.
    #[default]
    Reject,
    /// Answer the call anyway.
    Accept,
    /// Send it to the voicemail target of the route.
    SendToVoicemail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        policy: IncomingCallPolicy,
    }

    fn parse(s: &str) -> Result<IncomingCallPolicy, String> {
        toml::from_str::<Holder>(s).map(|h| h.policy).map_err(|e| e.to_string())
    }

    #[test]
    fn policies_read_from_configuration() {
        assert_eq!(parse(r#"policy = "reject_all""#).unwrap(), IncomingCallPolicy::RejectAll);
        assert_eq!(parse(r#"policy = "accept_all""#).unwrap(), IncomingCallPolicy::AcceptAll);
        assert_eq!(
            parse(r#"policy = { accept_whitelist = { domains = ["example.com"], users = ["boss@x.org"] } }"#).unwrap(),
            IncomingCallPolicy::AcceptWhitelist {
                allowed_domains: vec!["example.com".into()],
                allowed_users: vec!["boss@x.org".into()]
            }
        );
        assert_eq!(
            parse(r#"policy = { queue_with_timeout = { secs = 20, on_timeout = "send_to_voicemail" } }"#).unwrap(),
            IncomingCallPolicy::QueueWithTimeout { timeout_secs: 20, on_timeout: TimeoutAction::SendToVoicemail }
        );
        assert_eq!(IncomingCallPolicy::default(), IncomingCallPolicy::RequireManual);
        let err = parse(r#"policy = "accept_some""#).unwrap_err();
        assert!(err.contains("accept_some"), "{err}");
    }
}
