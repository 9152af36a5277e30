//! Overrides of the configuration file: `CALLMESH_<SECTION>_<KEY>=value` environment
//! variables (e.g. `CALLMESH_SIP_LISTEN`, `CALLMESH_MEDIA_RTP_PORTS`) and
//! `--set section.key=value` flags. Values are read as TOML scalars when they parse as one
//! (numbers, booleans), else as strings.
//!
//! Only variables that name a section and one of its keys are read: others that merely begin
//! with `CALLMESH_` are somebody else's (Kubernetes injects `CALLMESH_SERVICE_HOST`,
//! `CALLMESH_PORT_5060_UDP_PROTO`… into every pod of a namespace with a Service named
//! `callmesh`) and are skipped (the binary logs them at debug level). A wrong key in a
//! `--set` flag or in the file is still an error naming it.

use std::collections::BTreeMap;

use super::ConfigError;

/// Every key a variable or flag may set, by section (lists like `routes` are file-only).
/// `keys_match_the_configuration` checks this against the configuration's own fields.
pub(super) const KEYS: [(&str, &[&str]); 9] = [
    ("node", &["id", "drain_timeout_secs"]),
    ("nats", &["url", "replicas"]),
    ("sip", &["listen", "advertise", "orphan_timeout_secs", "reuse_port"]),
    (
        "media",
        &[
            "bind",
            "advertise",
            "rtp_ports",
            "no_rtp_timeout_secs",
            "prompts_dir",
            "recordings_dir",
            "zone",
            "max_sessions",
            "max_cpu_percent",
        ],
    ),
    ("auth", &["realm", "secret"]),
    ("session", &["lease_secs"]),
    ("http", &["listen"]),
    ("api", &["listen", "tokens", "open"]),
    ("kube", &["pod", "namespace", "node", "advertise"]),
];

fn known(section: &str, key: &str) -> bool {
    KEYS.iter().any(|(s, keys)| *s == section && keys.contains(&key))
}

/// The section and key an environment variable names, if it names one: the section is the
/// first word after `CALLMESH_`, the key the rest (`CALLMESH_MEDIA_RTP_PORTS` → media.rtp_ports).
fn env_key(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix("CALLMESH_")?.to_ascii_lowercase();
    let (section, key) = rest.split_once('_')?;
    known(section, key).then(|| (section.to_owned(), key.to_owned()))
}

fn scalar(raw: &str) -> toml::Value {
    let parsed = format!("v = {raw}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v"));
    match parsed {
        Some(v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_))) => v,
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn set(table: &mut toml::Table, section: &str, key: &str, raw: &str, origin: &str) -> Result<(), ConfigError> {
    if !known(section, key) {
        return Err(ConfigError::Invalid(format!("{origin}: unknown setting {section}.{key}")));
    }
    let entry = table.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(t) = entry else {
        return Err(ConfigError::Invalid(format!("{origin}: {section} is not a section")));
    };
    t.insert(key.to_owned(), scalar(raw));
    Ok(())
}

/// Applies environment variables (`env`, usually the process environment), then `sets`.
/// Returns the `CALLMESH_*` variables that name no setting, which were skipped.
pub fn apply_overrides(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
    sets: &[String],
) -> Result<Vec<String>, ConfigError> {
    let mut skipped = Vec::new();
    for (name, value) in env {
        match env_key(name) {
            Some((section, key)) => set(table, &section, &key, value, &format!("environment variable {name}"))?,
            None if name.starts_with("CALLMESH_") => skipped.push(name.clone()),
            None => {}
        }
    }
    for s in sets {
        let (path, value) =
            s.split_once('=').ok_or_else(|| ConfigError::Invalid(format!("--set {s}: expected section.key=value")))?;
        let (section, key) =
            path.split_once('.').ok_or_else(|| ConfigError::Invalid(format!("--set {s}: expected section.key=value")))?;
        set(table, section, key, value, &format!("--set {s}"))?;
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_then_flags_override_the_file() {
        let mut table: toml::Table = "[sip]\nlisten = \"1.1.1.1:5060\"\n[media]\nno_rtp_timeout_secs = 3".parse().unwrap();
        let env = BTreeMap::from([
            ("CALLMESH_SIP_LISTEN".to_owned(), "2.2.2.2:5060".to_owned()),
            ("CALLMESH_MEDIA_RTP_PORTS".to_owned(), "30000-30099".to_owned()),
            ("PATH".to_owned(), "/bin".to_owned()),
        ]);
        apply_overrides(&mut table, &env, &["sip.listen=3.3.3.3:5060".into(), "media.no_rtp_timeout_secs=9".into()]).unwrap();
        assert_eq!(table["sip"]["listen"].as_str(), Some("3.3.3.3:5060"));
        assert_eq!(table["media"]["rtp_ports"].as_str(), Some("30000-30099"));
        assert_eq!(table["media"]["no_rtp_timeout_secs"].as_integer(), Some(9));
    }

    #[test]
    fn variables_that_name_no_setting_are_skipped() {
        let mut t = toml::Table::new();
        // What Kubernetes injects for Services named `callmesh` and `callmesh-media`, a
        // variable of ours for the image, and a typo.
        let env = BTreeMap::from(
            [
                "CALLMESH_SERVICE_HOST",
                "CALLMESH_SERVICE_PORT_SIP",
                "CALLMESH_PORT",
                "CALLMESH_PORT_5060_UDP_PROTO",
                "CALLMESH_MEDIA_SERVICE_HOST",
                "CALLMESH_MEDIA_PORT_9060_TCP_ADDR",
                "CALLMESH_BIN",
                "CALLMESH_SPI_LISTEN",
                "CALLMESH_",
            ]
            .map(|k| (k.to_owned(), "10.0.0.1".to_owned())),
        );
        let skipped = apply_overrides(&mut t, &env, &[]).unwrap();
        assert!(t.is_empty(), "{t:?}");
        assert_eq!(skipped.len(), env.len());
    }

    #[test]
    fn wrong_flags_are_named() {
        let mut t = toml::Table::new();
        let e = apply_overrides(&mut t, &BTreeMap::new(), &["nodot=1".into()]).unwrap_err().to_string();
        assert!(e.contains("--set nodot=1"), "{e}");
        let e = apply_overrides(&mut t, &BTreeMap::new(), &["spi.listen=x".into()]).unwrap_err().to_string();
        assert!(e.contains("--set spi.listen=x") && e.contains("unknown setting spi.listen"), "{e}");
        let e = apply_overrides(&mut t, &BTreeMap::new(), &["sip.lisen=x".into()]).unwrap_err().to_string();
        assert!(e.contains("unknown setting sip.lisen"), "{e}");
    }

    /// `KEYS` lists exactly the fields of each section: serde's refusal of an unknown field
    /// names the ones it expects.
    #[test]
    fn keys_match_the_configuration() {
        for (section, keys) in KEYS {
            let text = format!("[{section}]\nzz_not_a_key = 1");
            let table: toml::Table = text.parse().unwrap();
            let e = <super::super::Config as serde::Deserialize>::deserialize(table).unwrap_err().to_string();
            let first_line = e.lines().next().unwrap_or_default();
            let expected = first_line.split_once("expected").map(|(_, rest)| rest).unwrap_or_default();
            let fields: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let mut listed = keys.to_vec();
            let mut fields = fields;
            listed.sort();
            fields.sort();
            assert_eq!(listed, fields, "[{section}]: {e}");
        }
    }
}
