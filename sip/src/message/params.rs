//! Ordered `;name[=value]` parameter lists, as found on URIs, `Via`, name-addr headers and
//! most other typed headers. Names compare case-insensitively; values are kept as written
//! (quoted values keep their quotes so printing reproduces them).

use std::fmt;

use super::ParseError;
use super::lex;

/// One parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

/// An ordered list of parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Params(pub Vec<Param>);

impl Params {
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// Parses the text after the first `;` (parameters separated by `;`).
    pub fn parse(s: &str) -> Result<Params, ParseError> {
        let mut out = Vec::new();
        for (name, value) in lex::params(s) {
            if !lex::is_token(name) {
                return Err(ParseError::BadParam);
            }
            if let Some(v) = value {
                let ok = if v.starts_with('"') { lex::is_valid_quoted(v) } else { is_param_value(v) };
                if !ok {
                    return Err(ParseError::BadParam);
                }
            }
            out.push(Param { name: name.to_owned(), value: value.map(str::to_owned) });
        }
        Ok(Params(out))
    }

    /// The value of `name`; `Some(None)` for a flag parameter.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| p.value.as_deref())
    }

    /// The value of `name` when it has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing an existing one in place).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self.0.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name)) {
            Some(p) => p.value = value,
            None => self.0.push(Param { name: name.to_owned(), value }),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Characters allowed in an unquoted parameter value: token characters plus those URIs and
/// `Via` use in values (IPv6 brackets, colons, slashes, escapes).
fn is_param_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| lex::is_token_byte(b) || matches!(b, b'[' | b']' | b':' | b'/' | b'&' | b'$' | b'@'))
}

impl fmt::Display for Params {
    /// Prints each parameter with its leading `;`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            write!(f, ";{}", p.name)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let s = "lr;transport=tcp;x=\"a b\"";
        let p = Params::parse(s).unwrap();
        assert_eq!(p.get("LR"), Some(None));
        assert_eq!(p.value("Transport"), Some("tcp"));
        assert_eq!(p.to_string(), format!(";{s}"));
        assert!(Params::parse("a b=c").is_err());
        assert!(Params::parse("a=\"open").is_err());
    }
}
