//! The transaction user's commands: start client transactions, respond on server
//! transactions, cancel an INVITE (§9.1), send the ACK for a 2xx (§13.2.2.4).

use std::time::Instant;

use super::{ClientEntry, TransactionLayer};
use crate::message::{BRANCH_COOKIE, Message, Method};
use crate::transaction::client::{ClientState, ClientTx};
use crate::transaction::config::TxError;
use crate::transaction::key::ClientKey;
use crate::transaction::layer::AckKey;
use crate::transaction::server::RespondError;
use crate::transaction::{Peer, Transmit, TxId, cancel_for};

impl TransactionLayer {
    /// Starts a client transaction sending `request` to `peer`. The request's top Via must
    /// carry a unique branch with the `z9hG4bK` cookie (see [`super::new_branch`]).
    pub fn send_request(&mut self, request: Message, peer: Peer, now: Instant) -> Result<TxId, TxError> {
        let method = request.method().filter(|_| request.is_request()).ok_or(TxError::NotARequest)?;
        if *method == Method::Ack {
            return Err(TxError::AckInTransaction);
        }
        let invite = *method == Method::Invite;
        let key = ClientKey::for_request(&request)
            .filter(|_| request.branch().is_some_and(|b| b.starts_with(BRANCH_COOKIE)))
            .ok_or(TxError::NoBranch)?;
        if self.client_index.contains_key(&key) {
            return Err(TxError::DuplicateBranch);
        }
        let id = self.new_id();
        let tx = ClientTx::start(id, request, peer, invite, now, &self.config.timers, &mut self.out);
        self.client_index.insert(key.clone(), id);
        self.clients.insert(id, Box::new(ClientEntry { key, tx }));
        Ok(id)
    }

    /// Sends `response` on server transaction `tx`.
    pub fn respond(&mut self, tx: TxId, response: Message, now: Instant) -> Result<(), TxError> {
        let cfg = self.config.timers;
        let e = self.servers.get_mut(&tx).ok_or(TxError::Unknown)?;
        e.tx.respond(&response, now, &cfg, &mut self.out).map_err(|err| match err {
            RespondError::FinalAlreadySent => TxError::FinalAlreadySent,
            RespondError::NotAResponse => TxError::NotAResponse,
        })?;
        if let Some(tag) = response.to_tag() {
            e.local_tag.get_or_insert_with(|| tag.into());
        }
        if e.tx.awaiting_ack
            && e.ack_key.is_none()
            && let Some(k) = AckKey::of(&response)
        {
            self.acks.insert(k.clone(), tx);
            e.ack_key = Some(k);
        }
        self.cleanup(tx);
        Ok(())
    }

    /// Cancels INVITE client transaction `tx` (§9.1). The CANCEL goes out at once if a
    /// provisional response arrived (its transaction id is returned), else as soon as one
    /// does.
    pub fn cancel(&mut self, tx: TxId, now: Instant) -> Result<Option<TxId>, TxError> {
        let e = self.clients.get_mut(&tx).ok_or(TxError::Unknown)?;
        if !e.tx.is_invite() {
            return Err(TxError::NotCancellable);
        }
        match e.tx.state {
            ClientState::Calling => {
                e.tx.cancel_pending = true;
                Ok(None)
            }
            ClientState::Proceeding => self.send_cancel(tx, now).map(Some),
            _ => Err(TxError::NotCancellable),
        }
    }

    pub(super) fn send_cancel(&mut self, invite_tx: TxId, now: Instant) -> Result<TxId, TxError> {
        let e = self.clients.get(&invite_tx).ok_or(TxError::Unknown)?;
        let peer = e.tx.peer;
        let invite = e.tx.request.as_ref().ok_or(TxError::NotCancellable)?;
        let cancel = cancel_for(invite).map_err(|_| TxError::Build("CANCEL"))?;
        self.send_request(cancel, peer, now)
    }

    /// Sends the ACK for a 2xx (outside any transaction, §13.2.2.4). With the INVITE
    /// transaction id, later retransmissions of that 2xx are answered with this ACK
    /// without bothering the transaction user.
    pub fn send_ack(&mut self, invite_tx: Option<TxId>, ack: &Message, peer: Peer) {
        let bytes = ack.as_bytes().clone();
        if let (Some(id), Some(tag)) = (invite_tx, ack.to_tag())
            && let Some(e) = self.clients.get_mut(&id)
        {
            e.tx.remember_ack(tag, bytes.clone());
        }
        self.out.transmits.push_back(Transmit { peer, payload: bytes, tx: None });
    }

    /// Sends a message outside any transaction.
    pub fn send_stateless(&mut self, message: &Message, peer: Peer) {
        self.out.transmits.push_back(Transmit { peer, payload: message.as_bytes().clone(), tx: None });
    }
}
