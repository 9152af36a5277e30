//! The eagerly decoded core of a message: the headers every transaction-layer decision
//! needs. Decoding records spans into the buffer, never allocates (except for extension
//! methods), and notes the first malformed or duplicated core header so validation can
//! answer `400` naming it.

use std::fmt;

use super::lex;
use super::name_addr::split_name_addr;
use super::simple_headers::{CSeq, parse_number};
use super::via::{Transport, split_via};
use super::{EntryName, HeaderEntry, HeaderName, Method, Span};

/// What is wrong with a core header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    Malformed(HeaderName),
    Duplicate(HeaderName),
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::Malformed(h) => write!(f, "Malformed {h} header"),
            HeaderProblem::Duplicate(h) => write!(f, "Duplicate {h} header"),
        }
    }
}

/// The topmost `Via`, decoded.
#[derive(Clone, Debug)]
pub struct ViaCore {
    pub transport: Transport,
    pub(crate) sent_by: Span,
    pub(crate) host: Span,
    pub port: Option<u16>,
    pub(crate) branch: Option<Span>,
    /// `rport` present (RFC 3581): answer to the source port.
    pub rport: bool,
}

#[derive(Clone, Default)]
pub(crate) struct Core {
    pub call_id: Option<Span>,
    pub cseq: Option<(u32, Method)>,
    pub max_forwards: Option<u32>,
    pub content_length: Option<u32>,
    pub via: Option<ViaCore>,
    pub from: Option<Span>,
    pub to: Option<Span>,
    pub from_tag: Option<Span>,
    pub to_tag: Option<Span>,
    pub problem: Option<HeaderProblem>,
    /// A request whose SIP version is not 2.0 (answered with `505`).
    pub unsupported_version: bool,
}

impl Core {
    fn note(&mut self, p: HeaderProblem) {
        self.problem.get_or_insert(p);
    }
}

fn span_of(head: &str, part: &str) -> Span {
    let start = lex::offset_in(head, part);
    Span::new(start, start + part.len())
}

/// Decodes the core headers of `entries`; `head` is the whole head as text.
pub(crate) fn decode(head: &str, entries: &[HeaderEntry]) -> Core {
    let mut core = Core::default();
    let mut seen_via = false;
    for entry in entries {
        let EntryName::Known(name) = entry.name else { continue };
        let value = &head[entry.value.start as usize..entry.value.end as usize];
        match name {
            HeaderName::Via if !seen_via => {
                seen_via = true;
                match decode_via(head, value) {
                    Some(v) => core.via = Some(v),
                    None => core.note(HeaderProblem::Malformed(name)),
                }
            }
            HeaderName::CallId => {
                if core.call_id.is_some() {
                    core.note(HeaderProblem::Duplicate(name));
                } else if value.is_empty() || value.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                    core.note(HeaderProblem::Malformed(name));
                } else {
                    core.call_id = Some(entry.value);
                }
            }
            HeaderName::CSeq => match (&core.cseq, CSeq::parse(value)) {
                (Some(_), _) => core.note(HeaderProblem::Duplicate(name)),
                (None, Ok(c)) => core.cseq = Some((c.seq, c.method)),
                (None, Err(_)) => core.note(HeaderProblem::Malformed(name)),
            },
            HeaderName::From | HeaderName::To => {
                let (slot, tag_slot) = if name == HeaderName::From {
                    (&mut core.from, &mut core.from_tag)
                } else {
                    (&mut core.to, &mut core.to_tag)
                };
                if slot.is_some() {
                    core.problem.get_or_insert(HeaderProblem::Duplicate(name));
                    continue;
                }
                match split_name_addr(value, name) {
                    Ok(parts) if parts.uri.contains(':') => {
                        *slot = Some(entry.value);
                        if let Some(Some(tag)) = lex::find_param(parts.params, "tag") {
                            *tag_slot = Some(span_of(head, tag));
                        }
                    }
                    _ => {
                        core.problem.get_or_insert(HeaderProblem::Malformed(name));
                    }
                }
            }
            HeaderName::MaxForwards => match (core.max_forwards, parse_number(value, name)) {
                (Some(_), _) => core.note(HeaderProblem::Duplicate(name)),
                (None, Ok(n)) if n <= 255 => core.max_forwards = Some(n),
                (None, _) => core.note(HeaderProblem::Malformed(name)),
            },
            HeaderName::ContentLength => match (core.content_length, parse_number(value, name)) {
                (Some(prev), Ok(n)) if prev == n => {}
                (Some(_), _) => core.note(HeaderProblem::Duplicate(name)),
                (None, Ok(n)) => core.content_length = Some(n),
                (None, Err(_)) => core.note(HeaderProblem::Malformed(name)),
            },
            _ => {}
        }
    }
    core
}

fn decode_via(head: &str, value: &str) -> Option<ViaCore> {
    let first = lex::split_list(value).next()?;
    let parts = split_via(first).ok()?;
    let (host, port) = super::host::split_host_port(parts.sent_by).ok()?;
    let host_ok = !host.is_empty()
        && (host.starts_with('[') || host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !host_ok {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    let mut branch = None;
    let mut rport = false;
    for (name, value) in lex::params(parts.params) {
        if name.eq_ignore_ascii_case("branch") {
            branch = Some(span_of(head, value.filter(|v| !v.is_empty())?));
        } else if name.eq_ignore_ascii_case("rport") {
            rport = true;
        }
    }
    Some(ViaCore {
        transport: Transport::parse(parts.transport),
        sent_by: span_of(head, parts.sent_by),
        host: span_of(head, host),
        port,
        branch,
        rport,
    })
}
