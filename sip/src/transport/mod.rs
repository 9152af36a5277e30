//! Tokio transports for SIP: one UDP socket serving every transaction, and TCP with
//! connection reuse, per-connection framing, keep-alive answers and idle close. The
//! endpoint driver (`crate::endpoint`) owns them.

mod interface;
pub mod tcp;
pub mod udp;

pub use self::interface::advertised_ip;
pub use self::tcp::TcpConfig;
