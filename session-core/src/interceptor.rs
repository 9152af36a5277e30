//! Signaling interception: the pluggable decision taken on an incoming call before any
//! session exists (seed design). A handler answers `Accept`, `Reject(status)`, `Defer`
//! (someone else decides, possibly within a time limit), `Route` (to given targets) or
//! `Custom` (an action its host registered by name runs with the call: seed 003's custom
//! handler for call engines, IVRs and media servers). [`PolicyInterceptor`] is the default
//! handler, applying an [`IncomingCallPolicy`]; `SimplePeerBuilder::interceptor` takes
//! another.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::policy::{IncomingCallPolicy, TimeoutAction};

/// What a handler knows about an incoming call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    pub call_id: String,
    /// The Request-URI.
    pub target: String,
    /// User part of the Request-URI.
    pub target_user: String,
    pub from_user: String,
    pub from_domain: String,
}

/// A handler's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Take the call (the dial plan or the application chooses where it goes).
    Accept,
    Reject {
        status: u16,
        reason: String,
    },
    /// Someone else decides; `timeout` bounds the wait, then `on_timeout` applies.
    Defer {
        timeout: Option<Duration>,
        on_timeout: TimeoutAction,
    },
    /// Send the call to these targets, in order.
    Route {
        targets: Vec<String>,
    },
    /// The host's action named `action` takes the call (a name, so a decision can cross
    /// the bus): the SDK runs what `SimplePeerBuilder::custom_action` registered with the
    /// call's handle; a host without that action refuses the call with 500.
    Custom {
        action: String,
    },
}

impl Decision {
    pub fn reject(status: u16, reason: &str) -> Decision {
        Decision::Reject { status, reason: reason.to_owned() }
    }

    pub fn custom(action: &str) -> Decision {
        Decision::Custom { action: action.to_owned() }
    }
}

/// A pluggable handler of incoming calls.
#[async_trait]
pub trait SignalingInterceptor: Send + Sync {
    async fn on_incoming_call(&self, call: &CallInfo) -> Decision;
}

/// Tells whether the callee of a call is already on a call.
#[async_trait]
pub trait BusyCheck: Send + Sync {
    async fn is_busy(&self, call: &CallInfo) -> bool;
}

/// The default handler: an [`IncomingCallPolicy`].
#[derive(Clone)]
pub struct PolicyInterceptor {
    policy: IncomingCallPolicy,
    busy: Option<Arc<dyn BusyCheck>>,
}

impl PolicyInterceptor {
    pub fn new(policy: IncomingCallPolicy) -> Self {
        PolicyInterceptor { policy, busy: None }
    }

    /// How `RejectWhenBusy` learns that a callee is busy (without one, nobody is).
    pub fn with_busy_check(mut self, busy: Arc<dyn BusyCheck>) -> Self {
        self.busy = Some(busy);
        self
    }

    pub fn policy(&self) -> &IncomingCallPolicy {
        &self.policy
    }
}

fn whitelisted(call: &CallInfo, domains: &[String], users: &[String]) -> bool {
    let address = format!("{}@{}", call.from_user, call.from_domain);
    domains.iter().any(|d| d.eq_ignore_ascii_case(&call.from_domain))
        || users.iter().any(|u| u.eq_ignore_ascii_case(&address) || (!u.contains('@') && *u == call.from_user))
}

#[async_trait]
impl SignalingInterceptor for PolicyInterceptor {
    async fn on_incoming_call(&self, call: &CallInfo) -> Decision {
        match &self.policy {
            IncomingCallPolicy::RejectAll => Decision::reject(603, "Decline"),
            IncomingCallPolicy::RejectWhenBusy => match &self.busy {
                Some(b) if b.is_busy(call).await => Decision::reject(486, "Busy Here"),
                _ => Decision::Accept,
            },
            IncomingCallPolicy::AcceptAll => Decision::Accept,
            IncomingCallPolicy::AcceptWhitelist { allowed_domains, allowed_users } => {
                if whitelisted(call, allowed_domains, allowed_users) {
                    Decision::Accept
                } else {
                    Decision::reject(403, "Forbidden")
                }
            }
            IncomingCallPolicy::RequireManual => Decision::Defer { timeout: None, on_timeout: TimeoutAction::Reject },
            IncomingCallPolicy::QueueWithTimeout { timeout_secs, on_timeout } => {
                Decision::Defer { timeout: Some(Duration::from_secs(u64::from(*timeout_secs))), on_timeout: *on_timeout }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(from_user: &str, from_domain: &str) -> CallInfo {
        CallInfo {
            from_user: from_user.into(),
            from_domain: from_domain.into(),
            target_user: "1000".into(),
            ..Default::default()
        }
    }

    fn decide(policy: IncomingCallPolicy, c: &CallInfo) -> Decision {
        futures_executor(PolicyInterceptor::new(policy).on_incoming_call(c))
    }

    /// Runs a future that never waits (the policies are synchronous underneath).
    fn futures_executor<F: std::future::Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    struct AlwaysBusy;

    #[async_trait]
    impl BusyCheck for AlwaysBusy {
        async fn is_busy(&self, _: &CallInfo) -> bool {
            true
        }
    }

    #[test]
    fn each_policy_decides_as_named() {
        let c = call("alice", "example.com");
        assert_eq!(decide(IncomingCallPolicy::RejectAll, &c), Decision::reject(603, "Decline"));
        assert_eq!(decide(IncomingCallPolicy::AcceptAll, &c), Decision::Accept);
        assert_eq!(decide(IncomingCallPolicy::RejectWhenBusy, &c), Decision::Accept, "nobody is busy without a check");
        let busy = PolicyInterceptor::new(IncomingCallPolicy::RejectWhenBusy).with_busy_check(Arc::new(AlwaysBusy));
        assert_eq!(futures_executor(busy.on_incoming_call(&c)), Decision::reject(486, "Busy Here"));
        assert!(matches!(decide(IncomingCallPolicy::RequireManual, &c), Decision::Defer { timeout: None, .. }));
        let queued = decide(IncomingCallPolicy::QueueWithTimeout { timeout_secs: 5, on_timeout: TimeoutAction::Reject }, &c);
        assert_eq!(queued, Decision::Defer { timeout: Some(Duration::from_secs(5)), on_timeout: TimeoutAction::Reject });
    }

    #[test]
    fn whitelist_accepts_listed_domains_and_users_only() {
        let policy = IncomingCallPolicy::AcceptWhitelist {
            allowed_domains: vec!["company.com".into()],
            allowed_users: vec!["boss@external.com".into()],
        };
        assert_eq!(decide(policy.clone(), &call("anyone", "Company.com")), Decision::Accept);
        assert_eq!(decide(policy.clone(), &call("boss", "external.com")), Decision::Accept);
        assert_eq!(decide(policy.clone(), &call("intern", "external.com")), Decision::reject(403, "Forbidden"));
        assert_eq!(decide(policy, &call("boss", "elsewhere.com")), Decision::reject(403, "Forbidden"));
    }
}
