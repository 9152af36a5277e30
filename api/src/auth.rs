//! Bearer tokens: every call to the API's services carries `authorization: Bearer <token>`
//! with one of `api.tokens`, unless the API is open. Tokens are compared in constant time.

use std::sync::Arc;

use tonic::{Request, Status};

/// The API's gate (a tonic interceptor).
#[derive(Clone)]
pub struct Auth {
    tokens: Arc<Vec<String>>,
    open: bool,
}

impl Auth {
    pub fn new(tokens: Vec<String>, open: bool) -> Auth {
        Auth { tokens: Arc::new(tokens), open }
    }

    fn admits(&self, header: Option<&str>) -> bool {
        if self.open {
            return true;
        }
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else { return false };
        self.tokens.iter().any(|t| same(t.as_bytes(), token.trim().as_bytes()))
    }
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let header = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        match self.admits(header) {
            true => Ok(request),
            false if header.is_none() => {
                Err(Status::unauthenticated("a bearer token is required (authorization: Bearer <token>)"))
            }
            false => Err(Status::unauthenticated("unknown token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_token_passes_unless_open() {
        let auth = Auth::new(vec!["s3cret".into()], false);
        assert!(auth.admits(Some("Bearer s3cret")));
        assert!(!auth.admits(Some("Bearer s3cre")));
        assert!(!auth.admits(Some("Bearer s3cret2")));
        assert!(!auth.admits(Some("s3cret")));
        assert!(!auth.admits(None));
        assert!(!Auth::new(vec![], false).admits(Some("Bearer ")));
        assert!(Auth::new(vec![], true).admits(None));
    }
}
