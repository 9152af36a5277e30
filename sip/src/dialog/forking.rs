//! The dialogs of one INVITE we sent, which a forking proxy may turn into several early
//! dialogs (one per To tag) and even several confirmed ones (§13.2.2.4: every 2xx must be
//! ACKed; all but the one kept should then be ended with BYE).

use super::{Dialog, DialogError, DialogState};
use crate::message::Message;

/// What a response did to the dialogs of an INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogUpdate {
    /// No dialog involved (100, or a 1xx without To tag).
    None,
    /// A new early dialog with this remote tag.
    NewEarly(String),
    /// An existing early dialog got another provisional response.
    Early(String),
    /// The dialog with this remote tag is confirmed and is the call's dialog.
    Confirmed(String),
    /// A 2xx for another fork after one was confirmed: ACK it, then BYE it.
    ExtraConfirmed(String),
    /// A final failure: every early dialog is gone.
    Failed,
}

/// The dialogs created by one INVITE.
#[derive(Debug, Clone)]
pub struct UacDialogs {
    invite: Message,
    dialogs: Vec<Dialog>,
    confirmed: Option<String>,
}

impl UacDialogs {
    pub fn new(invite: Message) -> Self {
        UacDialogs { invite, dialogs: Vec::new(), confirmed: None }
    }

    pub fn invite(&self) -> &Message {
        &self.invite
    }

    /// Applies a response to the INVITE.
    pub fn on_response(&mut self, response: &Message) -> Result<DialogUpdate, DialogError> {
        let status = response.status().unwrap_or(0);
        if status >= 300 {
            for d in &mut self.dialogs {
                if d.state == DialogState::Early {
                    d.terminate();
                }
            }
            return Ok(DialogUpdate::Failed);
        }
        let Some(tag) = response.to_tag().map(str::to_owned) else {
            return if status < 200 { Ok(DialogUpdate::None) } else { Err(DialogError::MissingTag) };
        };
        if status == 100 {
            return Ok(DialogUpdate::None);
        }
        let existing = self.dialogs.iter_mut().find(|d| d.id.remote_tag == tag);
        let is_new = existing.is_none();
        match existing {
            Some(d) => d.on_response(response)?,
            None => self.dialogs.push(Dialog::uac(&self.invite, response)?),
        }
        if status < 200 {
            return Ok(if is_new { DialogUpdate::NewEarly(tag) } else { DialogUpdate::Early(tag) });
        }
        match &self.confirmed {
            Some(kept) if *kept != tag => Ok(DialogUpdate::ExtraConfirmed(tag)),
            _ => {
                self.confirmed = Some(tag.clone());
                Ok(DialogUpdate::Confirmed(tag))
            }
        }
    }

    pub fn get(&self, remote_tag: &str) -> Option<&Dialog> {
        self.dialogs.iter().find(|d| d.id.remote_tag == remote_tag)
    }

    pub fn get_mut(&mut self, remote_tag: &str) -> Option<&mut Dialog> {
        self.dialogs.iter_mut().find(|d| d.id.remote_tag == remote_tag)
    }

    /// The confirmed dialog kept for the call.
    pub fn confirmed(&self) -> Option<&Dialog> {
        self.confirmed.as_deref().and_then(|t| self.get(t))
    }

    /// Takes the confirmed dialog out.
    pub fn into_confirmed(self) -> Option<Dialog> {
        let tag = self.confirmed?;
        self.dialogs.into_iter().find(|d| d.id.remote_tag == tag)
    }

    /// Early dialogs still alive.
    pub fn early(&self) -> impl Iterator<Item = &Dialog> {
        self.dialogs.iter().filter(|d| d.state == DialogState::Early)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Builder, HeaderName};
    use bytes::Bytes;

    fn invite() -> Message {
        Message::parse_datagram(Bytes::from_static(
            b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
From: <sip:alice@a.example>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: fork\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:alice@a.example>\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap()
    }

    fn resp(code: u16, tag: &str, contact: &str) -> Message {
        Builder::response_to(&invite(), code, "", Some(tag)).header(HeaderName::Contact, contact).build().unwrap()
    }

    #[test]
    fn forked_early_dialogs_then_one_confirmed_and_an_extra_2xx() {
        let mut set = UacDialogs::new(invite());
        assert_eq!(set.on_response(&resp(100, "x", "<sip:p@h>")).unwrap(), DialogUpdate::None);
        assert_eq!(set.on_response(&resp(180, "b1", "<sip:bob@10.0.0.1>")).unwrap(), DialogUpdate::NewEarly("b1".into()));
        assert_eq!(set.on_response(&resp(183, "b2", "<sip:bob@10.0.0.2>")).unwrap(), DialogUpdate::NewEarly("b2".into()));
        assert_eq!(set.on_response(&resp(180, "b1", "<sip:bob@10.0.0.1>")).unwrap(), DialogUpdate::Early("b1".into()));
        assert_eq!(set.early().count(), 2);
        assert_eq!(set.on_response(&resp(200, "b2", "<sip:bob@10.0.0.2>")).unwrap(), DialogUpdate::Confirmed("b2".into()));
        assert_eq!(set.on_response(&resp(200, "b1", "<sip:bob@10.0.0.1>")).unwrap(), DialogUpdate::ExtraConfirmed("b1".into()));
        let kept = set.confirmed().unwrap();
        assert_eq!(kept.remote_target.to_string(), "sip:bob@10.0.0.2");
        assert_eq!(kept.state, DialogState::Confirmed);
    }

    #[test]
    fn a_failure_ends_every_early_dialog() {
        let mut set = UacDialogs::new(invite());
        set.on_response(&resp(180, "b1", "<sip:bob@10.0.0.1>")).unwrap();
        assert_eq!(set.on_response(&resp(486, "b1", "<sip:bob@10.0.0.1>")).unwrap(), DialogUpdate::Failed);
        assert_eq!(set.early().count(), 0);
    }
}
