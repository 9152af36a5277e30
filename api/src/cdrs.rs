//! `callmesh.v1.Cdrs`: the call records written since a time, oldest first, up to the last
//! one written when asked.

use std::pin::Pin;
use std::sync::Arc;

use cluster::journal::{Journal, Log, Start};
use contracts::cdrs_server::Cdrs;
use contracts::{Cdr, CdrEntry, ExportRequest};
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status};

pub struct CdrsApi {
    journal: Arc<dyn Journal>,
}

impl CdrsApi {
    pub fn new(journal: Arc<dyn Journal>) -> Self {
        CdrsApi { journal }
    }
}

pub type CdrStream = Pin<Box<dyn Stream<Item = Result<CdrEntry, Status>> + Send>>;

#[tonic::async_trait]
impl Cdrs for CdrsApi {
    type ExportStream = CdrStream;

    async fn export(&self, request: Request<ExportRequest>) -> Result<Response<CdrStream>, Status> {
        let since = request.into_inner().since_unix_ms;
        let entries =
            self.journal.read(Log::Cdrs, Start::Time(since), false).await.map_err(|e| Status::unavailable(e.to_string()))?;
        let records = entries.filter_map(|entry| {
            std::future::ready(match entry {
                Ok(e) => Cdr::decode(e.payload).ok().map(|cdr| Ok(CdrEntry { sequence: e.sequence, cdr: Some(cdr) })),
                Err(e) => Some(Err(Status::unavailable(e.to_string()))),
            })
        });
        Ok(Response::new(Box::pin(records)))
    }
}
