//! `SimplePeerBuilder` (seed 000): configuration, the ten policies, the application's
//! handler, the event buffer and history; `build` binds the sockets and starts the peer.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use media::sdp::Codec;
use sip::endpoint::{Endpoint, EndpointConfig};

use super::SimplePeer;
use super::config::Config;
use super::error::Result;
use super::handler::CallHandler;
use super::incoming::IncomingCall;
use super::policies::{
    BufferOverflowPolicy, CallFailurePolicy, DtmfPolicy, EventLogLevel, HoldPolicy, IncomingCallPolicy, MediaErrorPolicy,
    NetworkErrorPolicy, Policies, TransferPolicy, UnhandledEventPolicy,
};
use crate::interceptor::SignalingInterceptor;

/// Builds a [`SimplePeer`]. Every setting has the seed's default: incoming calls need a
/// decision (`RequireManual`), transfers are refused, digits are forwarded, holds accepted.
pub struct SimplePeerBuilder {
    pub(super) name: String,
    pub(super) config: Config,
    pub(super) policies: Policies,
    pub(super) handler: Option<Arc<dyn CallHandler>>,
    pub(super) interceptor: Option<Arc<dyn SignalingInterceptor>>,
    pub(super) actions: HashMap<String, CustomAction>,
    pub(super) history_size: Option<usize>,
    pub(super) call_history_size: usize,
    pub(super) buffer_size: usize,
}

/// What a `Decision::Custom` runs: the call, to take as it likes.
pub(crate) type CustomAction = Arc<dyn Fn(IncomingCall) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

impl SimplePeerBuilder {
    /// A peer whose SIP user is `name` (`sip:name@ip:port`).
    pub fn new(name: &str) -> Self {
        SimplePeerBuilder {
            name: name.to_owned(),
            config: Config::default(),
            policies: Policies::default(),
            handler: None,
            interceptor: None,
            actions: HashMap::new(),
            history_size: None,
            call_history_size: 100,
            buffer_size: 1000,
        }
    }

    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    pub fn sip_port(mut self, port: u16) -> Self {
        self.config.sip_port = port;
        self
    }

    pub fn local_ip(mut self, ip: IpAddr) -> Self {
        self.config.local_ip = ip;
        self
    }

    pub fn media_ports(mut self, first: u16, last: u16) -> Self {
        self.config.media_ports = (first, last);
        self
    }

    /// Audio codecs in order of preference.
    pub fn codecs(mut self, codecs: Vec<Codec>) -> Self {
        self.config.codecs = codecs;
        self
    }

    /// Digest credentials for registrations and challenged calls.
    pub fn credentials(mut self, username: &str, password: &str) -> Self {
        self.config.credentials = Some((username.to_owned(), password.to_owned()));
        self
    }

    pub fn incoming_call_policy(mut self, p: IncomingCallPolicy) -> Self {
        self.policies.incoming_call = p;
        self
    }

    pub fn transfer_policy(mut self, p: TransferPolicy) -> Self {
        self.policies.transfer = p;
        self
    }

    pub fn dtmf_policy(mut self, p: DtmfPolicy) -> Self {
        self.policies.dtmf = p;
        self
    }

    pub fn hold_policy(mut self, p: HoldPolicy) -> Self {
        self.policies.hold = p;
        self
    }

    pub fn call_failure_policy(mut self, p: CallFailurePolicy) -> Self {
        self.policies.call_failure = p;
        self
    }

    pub fn media_error_policy(mut self, p: MediaErrorPolicy) -> Self {
        self.policies.media_error = p;
        self
    }

    pub fn network_error_policy(mut self, p: NetworkErrorPolicy) -> Self {
        self.policies.network_error = p;
        self
    }

    pub fn unhandled_event_policy(mut self, p: UnhandledEventPolicy) -> Self {
        self.policies.unhandled_event = p;
        self
    }

    pub fn buffer_overflow_policy(mut self, p: BufferOverflowPolicy) -> Self {
        self.policies.buffer_overflow = p;
        self
    }

    pub fn event_log_level(mut self, level: EventLogLevel) -> Self {
        self.policies.log_level = level;
        self
    }

    /// Keep the last `size` events for [`SimplePeer::event_history`] (`None`: keep none).
    pub fn event_history_size(mut self, size: Option<usize>) -> Self {
        self.history_size = size;
        self
    }

    /// Keep the records of the last `size` calls for [`SimplePeer::call_history`]
    /// (default 100; 0 keeps none).
    pub fn call_history_size(mut self, size: usize) -> Self {
        self.call_history_size = size;
        self
    }

    /// Events the buffer holds before the overflow policy applies (default 1000).
    pub fn event_buffer_size(mut self, size: usize) -> Self {
        self.buffer_size = size;
        self
    }

    /// The application's handler: it sees every event first.
    pub fn handler(mut self, handler: Arc<dyn CallHandler>) -> Self {
        self.handler = Some(handler);
        self
    }

    /// Decides on incoming calls no handler decided, instead of the incoming call policy
    /// (seed 003's pluggable `SignalingInterceptor`): `Accept`, `Reject`, `Defer`, `Route`
    /// (a 302 to the first target) or `Custom` (an action registered below).
    pub fn interceptor(mut self, interceptor: impl SignalingInterceptor + 'static) -> Self {
        self.interceptor = Some(Arc::new(interceptor));
        self
    }

    /// What `Decision::Custom { action: name }` runs: it gets the call undecided, to accept,
    /// reject, play to it first, queue it…
    pub fn custom_action<F, Fut>(mut self, name: &str, action: F) -> Self
    where
        F: Fn(IncomingCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.actions.insert(name.to_owned(), Arc::new(move |call| Box::pin(action(call))));
        self
    }

    /// Binds SIP (UDP and TCP) and starts the peer's agent and event processor.
    pub async fn build(self) -> Result<SimplePeer> {
        self.config.validate()?;
        let addr = SocketAddr::new(self.config.local_ip, self.config.sip_port);
        let mut endpoint_config = EndpointConfig::udp_and_tcp(addr);
        endpoint_config.transactions.timers = self.config.sip_timers;
        let endpoint = Endpoint::bind(endpoint_config).await?;
        Ok(SimplePeer::start(self, endpoint))
    }
}
