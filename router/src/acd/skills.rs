//! What a queue or a call requires of an agent's skills, as an expression in the spirit of
//! Twilio TaskRouter's target expressions:
//!
//! ```text
//! skills HAS "spanish" AND level >= 2
//! (spanish >= 2 OR "french" >= 3) AND NOT skills HAS "trainee"
//! ```
//!
//! `skills HAS "x"`: the agent has skill `x` (any level). `x >= n` (or `"x"`, and `>`, `<`,
//! `<=`, `==`, `!=`): the agent's level in `x` (0 without it). `level` compares the level of
//! the skill named by the `HAS` before it. `AND` binds tighter than `OR`; keywords are
//! case-insensitive.

use std::collections::BTreeMap;

/// An agent's skills: name → level.
pub type Skills = BTreeMap<String, u32>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

/// A parsed requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Has(String),
    Level(String, OpCode, u32),
    And(Box<Requirement>, Box<Requirement>),
    Or(Box<Requirement>, Box<Requirement>),
    Not(Box<Requirement>),
}

/// A comparison, opaque outside this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpCode(Op);

impl Requirement {
    pub fn parse(text: &str) -> Result<Requirement, String> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, at: 0, last_skill: None };
        let r = p.or()?;
        match p.tokens.get(p.at) {
            None => Ok(r),
            Some(t) => Err(format!("unexpected {t:?} in {text:?}")),
        }
    }

    /// Whether an agent with `skills` meets it.
    pub fn met_by(&self, skills: &Skills) -> bool {
        match self {
            Requirement::Has(s) => skills.contains_key(s),
            Requirement::Level(s, OpCode(op), n) => {
                let level = skills.get(s).copied().unwrap_or(0);
                match op {
                    Op::Ge => level >= *n,
                    Op::Gt => level > *n,
                    Op::Le => level <= *n,
                    Op::Lt => level < *n,
                    Op::Eq => level == *n,
                    Op::Ne => level != *n,
                }
            }
            Requirement::And(a, b) => a.met_by(skills) && b.met_by(skills),
            Requirement::Or(a, b) => a.met_by(skills) || b.met_by(skills),
            Requirement::Not(a) => !a.met_by(skills),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Str(String),
    Num(u32),
    Op(Op),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                out.push(if c == '(' { Token::Open } else { Token::Close });
            }
            '"' => {
                chars.next();
                let s: String = chars.by_ref().take_while(|c| *c != '"').collect();
                out.push(Token::Str(s));
            }
            '>' | '<' | '=' | '!' => {
                chars.next();
                let eq = chars.next_if_eq(&'=').is_some();
                out.push(Token::Op(match (c, eq) {
                    ('>', true) => Op::Ge,
                    ('>', false) => Op::Gt,
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    ('=', true) => Op::Eq,
                    ('!', true) => Op::Ne,
                    _ => return Err(format!("bad operator {c:?} in {text:?}")),
                }));
            }
            c if c.is_ascii_digit() => {
                let digits: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
                out.push(Token::Num(digits.parse().map_err(|_| format!("bad number {digits} in {text:?}"))?));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' => {
                let word: String =
                    std::iter::from_fn(|| chars.next_if(|c| c.is_alphanumeric() || *c == '_' || *c == '-')).collect();
                out.push(Token::Word(word));
            }
            other => return Err(format!("unexpected {other:?} in {text:?}")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// The skill of the last `HAS` (what `level` refers to).
    last_skill: Option<String>,
}

impl Parser {
    fn keyword(&mut self, k: &str) -> bool {
        let found = matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(k));
        self.at += usize::from(found);
        found
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Requirement, String> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            left = Requirement::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Requirement, String> {
        let mut left = self.unary()?;
        while self.keyword("AND") {
            left = Requirement::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Requirement, String> {
        if self.keyword("NOT") {
            return Ok(Requirement::Not(Box::new(self.unary()?)));
        }
        if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                other => Err(format!("expected ')', found {other:?}")),
            };
        }
        if self.keyword("skills") {
            if !self.keyword("HAS") {
                return Err("expected HAS after skills".into());
            }
            return match self.next() {
                Some(Token::Str(s) | Token::Word(s)) => {
                    self.last_skill = Some(s.clone());
                    Ok(Requirement::Has(s))
                }
                other => Err(format!("expected a skill name after HAS, found {other:?}")),
            };
        }
        let skill = match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("level") => {
                self.last_skill.clone().ok_or("`level` needs a `skills HAS \"…\"` before it")?
            }
            Some(Token::Word(s) | Token::Str(s)) => s,
            other => return Err(format!("expected a skill, found {other:?}")),
        };
        match (self.next(), self.next()) {
            (Some(Token::Op(op)), Some(Token::Num(n))) => Ok(Requirement::Level(skill, OpCode(op), n)),
            _ => Err(format!("expected a comparison with a number after {skill:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skills(list: &[(&str, u32)]) -> Skills {
        list.iter().map(|(s, l)| (s.to_string(), *l)).collect()
    }

    #[test]
    fn expressions_select_the_agents_they_describe() {
        let spanish2 = skills(&[("spanish", 2)]);
        let spanish1 = skills(&[("spanish", 1), ("french", 3)]);
        let trainee = skills(&[("spanish", 3), ("trainee", 1)]);
        let table = [
            ("skills HAS \"spanish\" AND level >= 2", [true, false, true]),
            ("(spanish >= 2 OR \"french\" >= 3) AND NOT skills HAS \"trainee\"", [true, true, false]),
            ("skills has french or spanish == 3", [false, true, true]),
            ("spanish != 2", [false, true, true]),
            ("german < 1", [true, true, true]),
        ];
        for (text, expected) in table {
            let r = Requirement::parse(text).unwrap();
            let got = [&spanish2, &spanish1, &trainee].map(|s| r.met_by(s));
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (text, says) in [
            ("level >= 2", "needs a `skills HAS"),
            ("skills spanish", "expected HAS"),
            ("spanish >=", "expected a comparison"),
            ("(spanish > 1", "expected ')'"),
            ("spanish > 1 spanish", "unexpected"),
            ("spanish => 1", "bad operator"),
        ] {
            let e = Requirement::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
