//! Overrides of the configuration file: `CALLMESH_<SECTION>_<KEY>=value` environment
//! variables (e.g. `CALLMESH_SIP_LISTEN`, `CALLMESH_MEDIA_RTP_PORTS`) and
//! `--set section.key=value` flags. Values are read as TOML scalars when they parse as one
//! (numbers, booleans), else as strings.

use std::collections::BTreeMap;

use super::ConfigError;

/// The sections a variable may address (lists like `routes` are file-only).
const SECTIONS: [&str; 7] = ["node", "nats", "sip", "media", "auth", "session", "http"];

fn scalar(raw: &str) -> toml::Value {
    let parsed = format!("v = {raw}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v"));
    match parsed {
        Some(v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_))) => v,
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn set(table: &mut toml::Table, section: &str, key: &str, raw: &str, origin: &str) -> Result<(), ConfigError> {
    if !SECTIONS.contains(&section) || key.is_empty() {
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
pub fn apply_overrides(table: &mut toml::Table, env: &BTreeMap<String, String>, sets: &[String]) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("CALLMESH_") else { continue };
        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = rest.split_once('_') else {
            return Err(ConfigError::Invalid(format!("environment variable {name}: expected CALLMESH_<SECTION>_<KEY>")));
        };
        set(table, section, key, value, &format!("environment variable {name}"))?;
    }
    for s in sets {
        let (path, value) =
            s.split_once('=').ok_or_else(|| ConfigError::Invalid(format!("--set {s}: expected section.key=value")))?;
        let (section, key) =
            path.split_once('.').ok_or_else(|| ConfigError::Invalid(format!("--set {s}: expected section.key=value")))?;
        set(table, section, key, value, &format!("--set {s}"))?;
    }
    Ok(())
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
    fn unknown_sections_and_shapes_are_named() {
        let mut t = toml::Table::new();
        let env = BTreeMap::from([("CALLMESH_SPI_LISTEN".to_owned(), "x".to_owned())]);
        let e = apply_overrides(&mut t, &env, &[]).unwrap_err().to_string();
        assert!(e.contains("CALLMESH_SPI_LISTEN") && e.contains("spi.listen"), "{e}");
        let e = apply_overrides(&mut t, &BTreeMap::new(), &["nodot=1".into()]).unwrap_err().to_string();
        assert!(e.contains("--set nodot=1"), "{e}");
    }
}
