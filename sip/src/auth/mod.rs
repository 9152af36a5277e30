//! Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): the computation, a server that
//! challenges and verifies, and a client that answers 401/407.

mod client;
mod digest;
mod server;

pub use self::client::{ChallengeError, Credentials, answer_challenge, authorization};
pub use self::digest::{Algorithm, DigestInput};
pub use self::server::{DigestServer, Verdict};
