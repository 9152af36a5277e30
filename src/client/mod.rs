//! The API's command-line clients: `callmesh cdr export` (call records as JSON lines) and
//! `callmesh ctl` (agents, queues, calls, events). Both talk gRPC to `--api` (default the
//! local node's `api.listen`) with `--token` (or `CALLMESH_API_TOKEN`).

pub mod cdr;
pub mod ctl;

use anyhow::Context;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Where the API is and how to get in.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The API's URL (default: this host's `api.listen`, http://127.0.0.1:9070).
    #[arg(long, global = true)]
    pub api: Option<String>,
    /// A bearer token of `api.tokens` (or the one the node printed at start).
    #[arg(long, env = "CALLMESH_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// Puts the bearer token on every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("authorization", token.clone());
        }
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

/// A connection to the API, and the token to present.
pub async fn connect(args: &ApiArgs, default: Option<std::net::SocketAddr>) -> anyhow::Result<(Channel, Bearer)> {
    let url = match (&args.api, default) {
        (Some(url), _) => url.clone(),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => "http://127.0.0.1:9070".into(),
    };
    let channel = Channel::from_shared(url.clone())
        .with_context(|| format!("{url:?} is not a URL"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connecting to the API at {url}"))?;
    let token = match &args.token {
        Some(t) => Some(format!("Bearer {t}").parse().context("the token is not printable ASCII")?),
        None => None,
    };
    Ok((channel, Bearer(token)))
}

/// A gRPC error as the user should read it.
pub fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code().description(), e.message())
}
