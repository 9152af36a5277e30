//! The dial plan: routes matched by a regular expression on the Request-URI user part, each
//! with its incoming-call policy and its target — a URI template (`${user}` is the dialled
//! user), the registered contacts of the dialled user, or a conference room — or, instead of the policy, a named
//! in-process interceptor.

use regex::Regex;
use session_core::policy::IncomingCallPolicy;

/// Where a route sends calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SIP URI; `${user}` is replaced by the dialled user.
    Uri(String),
    /// The contacts the dialled user registered.
    Registered,
    /// A conference room; `${user}` is replaced by the dialled user (`conference:${user}`).
    Conference(String),
    /// A queue of the ACD (`queue:<name>`).
    Queue(String),
}

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// For logs and call records (`routes[i]` when not named).
    pub name: String,
    pub user: Regex,
    pub target: Target,
    pub policy: IncomingCallPolicy,
    /// Give up on the target after this many seconds (0: no limit); a `QueueWithTimeout`
    /// policy sets it too.
    pub ring_timeout_secs: u32,
    pub voicemail: Option<String>,
    /// The in-process interceptor (`RouterConfig::interceptors`) deciding this route's calls
    /// instead of `policy`.
    pub interceptor: Option<String>,
    /// What the media does for the route's calls (conference routes).
    pub media: RouteMedia,
}

/// Media options of a route: recording, prompt files played to the caller, the media zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteMedia {
    pub record: bool,
    /// Played to the caller alone on arrival.
    pub greeting: Option<String>,
    /// Played while the caller is alone.
    pub music_on_hold: Option<String>,
    /// Media nodes of this zone only.
    pub zone: Option<String>,
    /// A queue route's periodic announcement: every so many seconds (what it says, the
    /// routers tell the session each time).
    pub announce_secs: Option<u32>,
    /// A queue route's callers' priority (higher first) and required skills.
    pub priority: u32,
    pub requires: Option<String>,
}

impl Target {
    /// The target for `user`: a URI, or `conference:<room>` (templates only).
    pub fn expand(&self, user: &str) -> Option<String> {
        match self {
            Target::Uri(template) => Some(template.replace("${user}", user)),
            Target::Conference(room) => Some(format!("conference:{}", room.replace("${user}", user))),
            Target::Queue(queue) => Some(format!("queue:{queue}")),
            Target::Registered => None,
        }
    }
}

/// The first route matching `user`.
pub fn find<'a>(routes: &'a [Route], user: &str) -> Option<&'a Route> {
    routes.iter().find(|r| r.user.is_match(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(user: &str, target: Target) -> Route {
        Route {
            name: user.into(),
            user: Regex::new(user).unwrap(),
            target,
            policy: IncomingCallPolicy::AcceptAll,
            ring_timeout_secs: 0,
            voicemail: None,
            interceptor: None,
            media: RouteMedia::default(),
        }
    }

    #[test]
    fn first_matching_route_wins_and_templates_expand() {
        let routes = vec![route(r"^1\d{3}$", Target::Uri("sip:${user}@127.0.0.1:5090".into())), route(".*", Target::Registered)];
        let r = find(&routes, "1234").unwrap();
        assert_eq!(r.target.expand("1234").as_deref(), Some("sip:1234@127.0.0.1:5090"));
        assert_eq!(find(&routes, "alice").unwrap().target, Target::Registered);
        assert!(find(&routes[..1], "12345").is_none());
    }
}
