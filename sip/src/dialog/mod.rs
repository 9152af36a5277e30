//! Dialogs (RFC 3261 §12): their identity, state, sequence numbers, route set and remote
//! target, created by a UAC from a 1xx-with-tag or 2xx and by a UAS from the request;
//! in-dialog requests are built in [`request`]; several early dialogs of one forked INVITE
//! are tracked by [`forking::UacDialogs`].

pub mod forking;
mod request;

use crate::message::{HeaderName, Message, Method, NameAddr, ParseError, Uri};

/// A dialog's identity (§12): Call-ID and both tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    Confirmed,
    Terminated,
}

/// Why a dialog could not be created or a request not accepted in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DialogError {
    #[error("response without To tag")]
    MissingTag,
    #[error("no Contact to use as remote target")]
    MissingContact,
    #[error("status {0} does not create a dialog")]
    NotDialogCreating(u16),
    #[error("CSeq {got} is lower than the last one seen ({last})")]
    OutOfOrder { got: u32, last: u32 },
    #[error("the request does not belong to this dialog")]
    WrongDialog,
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl DialogError {
    /// The status a UAS answers an in-dialog request with for this error.
    pub fn status(&self) -> u16 {
        match self {
            DialogError::OutOfOrder { .. } => 500,
            DialogError::WrongDialog => 481,
            _ => 400,
        }
    }
}

/// One dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub id: DialogId,
    pub state: DialogState,
    /// The last CSeq number we used.
    pub local_seq: u32,
    /// The last CSeq number the peer used.
    pub remote_seq: Option<u32>,
    /// Our address (From of our requests), with our tag.
    pub local: NameAddr,
    /// The peer's address (To of our requests), with its tag.
    pub remote: NameAddr,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Record-Route, in the order our requests must visit it.
    pub route_set: Vec<NameAddr>,
    /// The INVITE of the dialog was sent to a `sips:` URI.
    pub secure: bool,
}

fn contact_uri(m: &Message) -> Result<Option<Uri>, DialogError> {
    Ok(m.name_addrs(HeaderName::Contact)?.into_iter().next().map(|c| c.uri))
}

impl Dialog {
    /// A UAC dialog from `request` and a 101–299 response carrying a To tag (§12.1.2).
    pub fn uac(request: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let status = response.status().unwrap_or(0);
        if !(101..300).contains(&status) {
            return Err(DialogError::NotDialogCreating(status));
        }
        let remote = response.to()?;
        let remote_tag = remote.tag().ok_or(DialogError::MissingTag)?.to_owned();
        let local = request.from()?;
        let request_uri = request.request_uri()?;
        let remote_target = match contact_uri(response)? {
            Some(uri) => uri,
            None if status < 200 => request_uri.clone(),
            None => return Err(DialogError::MissingContact),
        };
        let mut route_set = response.name_addrs(HeaderName::RecordRoute)?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id().unwrap_or_default().to_owned(),
                local_tag: local.tag().unwrap_or_default().to_owned(),
                remote_tag,
            },
            state: if status < 200 { DialogState::Early } else { DialogState::Confirmed },
            local_seq: request.cseq().map(|c| c.0).unwrap_or(0),
            remote_seq: None,
            local,
            remote,
            remote_target,
            route_set,
            secure: request_uri.scheme() == "sips",
        })
    }

    /// A UAS dialog for `request`, with our `local_tag` (§12.1.1). It is early until
    /// [`Dialog::confirm`].
    pub fn uas(request: &Message, local_tag: &str) -> Result<Dialog, DialogError> {
        let remote = request.from()?;
        let local = request.to()?.with_tag(local_tag);
        let remote_target = contact_uri(request)?.ok_or(DialogError::MissingContact)?;
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id().unwrap_or_default().to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: remote.tag().unwrap_or_default().to_owned(),
            },
            state: DialogState::Early,
            local_seq: 0,
            remote_seq: request.cseq().map(|c| c.0),
            local,
            remote,
            remote_target,
            route_set: request.name_addrs(HeaderName::RecordRoute)?,
            secure: request.request_uri()?.scheme() == "sips",
        })
    }

    pub fn confirm(&mut self) {
        if self.state == DialogState::Early {
            self.state = DialogState::Confirmed;
        }
    }

    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// A response to a request we sent in this dialog (or the 2xx confirming it): confirms
    /// an early dialog, and a 2xx to a target refresh (INVITE, UPDATE) replaces the remote
    /// target with its Contact (§12.2.1.2). A 2xx confirming an early dialog also fixes the
    /// route set from its Record-Route.
    pub fn on_response(&mut self, response: &Message) -> Result<(), DialogError> {
        let status = response.status().unwrap_or(0);
        if !(200..300).contains(&status) {
            return Ok(());
        }
        if self.state == DialogState::Early {
            let mut route_set = response.name_addrs(HeaderName::RecordRoute)?;
            route_set.reverse();
            self.route_set = route_set;
            self.state = DialogState::Confirmed;
        }
        if matches!(response.method(), Some(Method::Invite | Method::Update))
            && let Some(uri) = contact_uri(response)?
        {
            self.remote_target = uri;
        }
        Ok(())
    }

    /// A request from the peer in this dialog (§12.2.2): checks its CSeq is not lower than
    /// the last, remembers it, and takes a target refresh's Contact.
    pub fn on_request(&mut self, request: &Message) -> Result<(), DialogError> {
        if request.call_id() != Some(self.id.call_id.as_str()) || request.from_tag() != Some(self.id.remote_tag.as_str()) {
            return Err(DialogError::WrongDialog);
        }
        let (seq, method) = request.cseq().ok_or(ParseError::BadHeaderValue(HeaderName::CSeq))?;
        if matches!(method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if let Some(last) = self.remote_seq
            && seq < last
        {
            return Err(DialogError::OutOfOrder { got: seq, last });
        }
        self.remote_seq = Some(seq);
        if matches!(method, Method::Invite | Method::Update)
            && let Some(uri) = contact_uri(request)?
        {
            self.remote_target = uri;
        }
        Ok(())
    }

    /// True when `message` (a request from the peer, or a response to us) carries this
    /// dialog's identity.
    pub fn matches(&self, message: &Message) -> bool {
        let (ours, theirs) =
            if message.is_request() { (message.to_tag(), message.from_tag()) } else { (message.from_tag(), message.to_tag()) };
        message.call_id() == Some(self.id.call_id.as_str())
            && ours == Some(self.id.local_tag.as_str())
            && theirs == Some(self.id.remote_tag.as_str())
    }
}
