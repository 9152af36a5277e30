//! Registrations in the `locations` bucket: the bindings of each address-of-record, each
//! with its own expiry (JetStream 2.9 has no per-key TTL). The registrar writes them with
//! compare-and-set, so two edges registering the same user do not lose each other's
//! bindings; the router reads the live ones.

use bytes::Bytes;
use prost::Message;

use crate::contracts::{self, Binding, Registration};
use crate::registry::{Bucket, Registry, RegistryError, encode_key, patiently};

/// The registry key of an address-of-record.
pub fn key(aor: &str) -> String {
    encode_key(&aor.to_ascii_lowercase())
}

/// The key (in the `agents` bucket) that marks a user busy while a call to it is up, for
/// routes with `RejectWhenBusy`.
pub fn busy_key(user: &str) -> String {
    format!("busy.{}", key(user))
}

/// The bindings of `aor` that have not expired at `now_ms`.
pub async fn lookup(registry: &dyn Registry, aor: &str, now_ms: u64) -> Result<Vec<Binding>, RegistryError> {
    let Some(entry) = registry.get(Bucket::Locations, &key(aor)).await? else { return Ok(Vec::new()) };
    let reg =
        Registration::decode(&entry.value[..]).map_err(|e| RegistryError::Backend(format!("registration of {aor}: {e}")))?;
    Ok(reg.bindings.into_iter().filter(|b| b.expires_unix_ms > now_ms).collect())
}

/// Applies `change` to the live bindings of `aor` and stores the result (retrying when
/// another writer got there first). Returns the bindings now stored.
pub async fn update(
    registry: &dyn Registry,
    aor: &str,
    sender: &str,
    now_ms: u64,
    change: impl Fn(&mut Vec<Binding>),
) -> Result<Vec<Binding>, RegistryError> {
    let key = key(aor);
    for _ in 0..8 {
        let current = patiently("registration read", || registry.get(Bucket::Locations, &key)).await?;
        let mut bindings = match &current {
            Some(e) => Registration::decode(&e.value[..]).map(|r| r.bindings).unwrap_or_default(),
            None => Vec::new(),
        };
        bindings.retain(|b| b.expires_unix_ms > now_ms);
        change(&mut bindings);
        let value = Bytes::from(
            Registration { meta: contracts::meta(sender), aor: aor.to_owned(), bindings: bindings.clone() }.encode_to_vec(),
        );
        // Tried again while the registry is unavailable: a write that landed unacknowledged
        // comes back as a lost compare-and-set, and the change is made again on what it wrote.
        let written = patiently("registration write", || async {
            match &current {
                Some(e) => registry.update(Bucket::Locations, &key, value.clone(), e.revision).await,
                None => registry.create(Bucket::Locations, &key, value.clone()).await,
            }
        })
        .await;
        match written {
            Ok(_) => return Ok(bindings),
            Err(RegistryError::WrongRevision { .. } | RegistryError::AlreadyExists(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(RegistryError::Backend(format!("registration of {aor} keeps changing")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MemoryRegistry;

    fn binding(contact: &str, expires: u64) -> Binding {
        Binding { contact: contact.into(), expires_unix_ms: expires, ..Default::default() }
    }

    #[tokio::test]
    async fn bindings_expire_and_merge() {
        let r = MemoryRegistry::default();
        update(&r, "Alice", "edge", 1_000, |b| b.push(binding("sip:a@1", 5_000))).await.unwrap();
        update(&r, "alice", "edge", 2_000, |b| b.push(binding("sip:a@2", 9_000))).await.unwrap();
        let live: Vec<_> = lookup(&r, "ALICE", 4_000).await.unwrap().into_iter().map(|b| b.contact).collect();
        assert_eq!(live, ["sip:a@1", "sip:a@2"]);
        assert_eq!(lookup(&r, "alice", 6_000).await.unwrap().len(), 1);
        let after = update(&r, "alice", "edge", 6_000, |b| b.retain(|x| x.contact != "sip:a@2")).await.unwrap();
        assert!(after.is_empty());
        assert!(lookup(&r, "bob", 0).await.unwrap().is_empty());
    }
}
