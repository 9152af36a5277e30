//! Session ownership with fencing. A session record names its owner node, a fencing epoch
//! and a lease. Every write is a compare-and-set on the record's revision; a takeover bumps
//! the epoch, so the old owner's next write loses its compare-and-set, finds a newer epoch,
//! and is refused with [`OwnershipError::Fenced`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;

use crate::contracts::{self, EngineState, SessionRecord};
use crate::registry::{Bucket, Registry, RegistryError, patiently, patiently_for};
use crate::subjects::{NodeId, SessionId};

/// How long a new session's record is tried while the registry is unavailable.
const CREATE_PATIENCE: Duration = Duration::from_secs(1);

/// Milliseconds since the Unix epoch, as the store sees them (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Why an ownership operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    #[error("session {0} already exists")]
    Exists(String),
    #[error("session {0} not found")]
    NotFound(String),
    #[error("session {session} belongs to {owner} at epoch {epoch}; this node's epoch {ours} is stale")]
    Fenced { session: String, owner: String, epoch: u64, ours: u64 },
    #[error("session {session} is leased by {owner} for {remaining_ms} ms more")]
    LeaseActive { session: String, owner: String, remaining_ms: u64 },
    #[error("session record {0} does not decode")]
    Corrupt(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A session this node owns: the record as last written and its revision.
#[derive(Debug, Clone)]
pub struct OwnedSession {
    pub record: SessionRecord,
    revision: u64,
}

impl OwnedSession {
    pub fn epoch(&self) -> u64 {
        self.record.epoch
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The call's state, to change before the next [`SessionStore::save`].
    pub fn engine_mut(&mut self) -> &mut EngineState {
        self.record.engine.get_or_insert_with(EngineState::default)
    }
}

/// Reads and writes session records as one node.
#[derive(Clone)]
pub struct SessionStore {
    registry: Arc<dyn Registry>,
    node: NodeId,
    lease: Duration,
    clock: Clock,
}

impl SessionStore {
    pub fn new(registry: Arc<dyn Registry>, node: NodeId, lease: Duration) -> Self {
        SessionStore { registry, node, lease, clock: Arc::new(contracts::unix_ms) }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    fn stamp(&self, record: &mut SessionRecord) -> Bytes {
        record.meta = contracts::meta(self.node.as_str());
        record.lease_expires_unix_ms = (self.clock)() + self.lease.as_millis() as u64;
        Bytes::from(record.encode_to_vec())
    }

    /// Creates the record of a new session, owned by this node at epoch 1.
    pub async fn create(&self, session: &SessionId, engine: EngineState) -> Result<OwnedSession, OwnershipError> {
        self.create_record(session, SessionRecord { engine: Some(engine), ..Default::default() }).await
    }

    /// Creates `record` as the record of a new session, owned by this node at epoch 1.
    pub async fn create_record(&self, session: &SessionId, mut record: SessionRecord) -> Result<OwnedSession, OwnershipError> {
        record.session_id = session.to_string();
        record.owner = self.node.to_string();
        record.epoch = 1;
        let value = self.stamp(&mut record);
        // Briefly: the call waits for its record (its callee's INVITE follows it), and a call
        // not recorded goes on — it only cannot be taken over.
        let mut tries = 0;
        let created = patiently_for("session create", CREATE_PATIENCE, || {
            tries += 1;
            self.registry.create(Bucket::Sessions, session.as_str(), value.clone())
        });
        match created.await {
            Ok(revision) => Ok(OwnedSession { record, revision }),
            // Tried again: the first create may have landed unacknowledged — then it is ours.
            Err(RegistryError::AlreadyExists(_)) if tries > 1 => match self.load(session).await? {
                Some((mine, revision)) if mine.owner == record.owner && mine.epoch == 1 => {
                    Ok(OwnedSession { record: mine, revision })
                }
                _ => Err(OwnershipError::Exists(session.to_string())),
            },
            Err(RegistryError::AlreadyExists(_)) => Err(OwnershipError::Exists(session.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// The record of `session` and its revision.
    pub async fn load(&self, session: &SessionId) -> Result<Option<(SessionRecord, u64)>, OwnershipError> {
        let Some(entry) = self.registry.get(Bucket::Sessions, session.as_str()).await? else { return Ok(None) };
        let record = SessionRecord::decode(&entry.value[..]).map_err(|_| OwnershipError::Corrupt(session.to_string()))?;
        Ok(Some((record, entry.revision)))
    }

    /// Writes the owned record (renewing the lease). Refused with `Fenced` when another
    /// node took the session over.
    pub async fn save(&self, owned: &mut OwnedSession) -> Result<(), OwnershipError> {
        let session = SessionId::new(owned.record.session_id.clone())
            .map_err(|_| OwnershipError::Corrupt(owned.record.session_id.clone()))?;
        for _ in 0..2 {
            let value = self.stamp(&mut owned.record);
            let revision = owned.revision;
            let written =
                patiently("session write", || self.registry.update(Bucket::Sessions, session.as_str(), value.clone(), revision));
            match written.await {
                Ok(revision) => {
                    owned.revision = revision;
                    return Ok(());
                }
                Err(RegistryError::WrongRevision { .. }) => {
                    let (current, revision) =
                        self.load(&session).await?.ok_or_else(|| OwnershipError::NotFound(session.to_string()))?;
                    if current.epoch != owned.record.epoch || current.owner != self.node.as_str() {
                        return Err(OwnershipError::Fenced {
                            session: session.to_string(),
                            owner: current.owner,
                            epoch: current.epoch,
                            ours: owned.record.epoch,
                        });
                    }
                    // Our own epoch wrote it: an earlier save whose acknowledgement was lost.
                    owned.revision = revision;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(OwnershipError::Registry(RegistryError::Backend("session record keeps changing under its owner".into())))
    }

    /// Takes `session` over with a new epoch. Unless `force`, only once its lease expired.
    pub async fn take_over(&self, session: &SessionId, force: bool) -> Result<OwnedSession, OwnershipError> {
        self.take(session, |record, now| {
            if !force && record.owner != self.node.as_str() && record.lease_expires_unix_ms > now {
                return Err(OwnershipError::LeaseActive {
                    session: session.to_string(),
                    owner: record.owner.clone(),
                    remaining_ms: record.lease_expires_unix_ms - now,
                });
            }
            Ok(())
        })
        .await
    }

    /// Takes `session` over from `dead`, a node known to have died (its lease aside), with a
    /// new epoch — only while `dead` still owns it: of several nodes claiming it, one wins.
    pub async fn claim(&self, session: &SessionId, dead: &str) -> Result<OwnedSession, OwnershipError> {
        self.take(session, |record, _| match record.owner == dead {
            true => Ok(()),
            false => Err(OwnershipError::Fenced {
                session: session.to_string(),
                owner: record.owner.clone(),
                epoch: record.epoch,
                ours: record.epoch + 1,
            }),
        })
        .await
    }

    /// Writes `session`'s record as ours with the next epoch, if `allowed` by what it says
    /// (and the time), by compare-and-set on the revision read.
    async fn take(
        &self,
        session: &SessionId,
        allowed: impl FnOnce(&SessionRecord, u64) -> Result<(), OwnershipError>,
    ) -> Result<OwnedSession, OwnershipError> {
        let (mut record, revision) = self.load(session).await?.ok_or_else(|| OwnershipError::NotFound(session.to_string()))?;
        allowed(&record, (self.clock)())?;
        let previous = (record.owner.clone(), record.epoch);
        record.owner = self.node.to_string();
        record.epoch += 1;
        let value = self.stamp(&mut record);
        match self.registry.update(Bucket::Sessions, session.as_str(), value, revision).await {
            Ok(revision) => Ok(OwnedSession { record, revision }),
            Err(RegistryError::WrongRevision { .. }) => {
                let (current, _) = self.load(session).await?.ok_or_else(|| OwnershipError::NotFound(session.to_string()))?;
                Err(OwnershipError::Fenced {
                    session: session.to_string(),
                    owner: current.owner,
                    epoch: current.epoch,
                    ours: previous.1 + 1,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the record of an ended session (only if this node still owns it as written).
    pub async fn remove(&self, owned: OwnedSession) -> Result<(), OwnershipError> {
        let key = owned.record.session_id.clone();
        let removed = patiently("session removal", || self.registry.delete(Bucket::Sessions, &key, Some(owned.revision)));
        match removed.await {
            Ok(()) => Ok(()),
            Err(RegistryError::WrongRevision { .. }) => {
                let current = self.registry.get(Bucket::Sessions, &key).await?;
                // Gone already: our delete landed, its acknowledgement was lost.
                let Some(current) = current else { return Ok(()) };
                let owner = Some(current)
                    .and_then(|e| SessionRecord::decode(&e.value[..]).ok())
                    .map(|r| (r.owner, r.epoch))
                    .unwrap_or_default();
                Err(OwnershipError::Fenced { session: key, owner: owner.0, epoch: owner.1, ours: owned.record.epoch })
            }
            Err(e) => Err(e.into()),
        }
    }
}
