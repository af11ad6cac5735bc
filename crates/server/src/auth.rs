//! Tokens and roles: the token file (`ROLE LEDGERS SHA256 [LABEL]` per line, never a token
//! itself), new tokens, and the check of a request's `Authorization: Bearer TOKEN`.
//!
//! A presented token is hashed and compared, in constant time, with every line of the file:
//! how long a check takes does not depend on how much of a hash matched, nor on which line.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do; each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Every `GET` of its ledgers.
    Read,
    /// `read`, and appends and what-if questions.
    Write,
    /// `write`, and `verify`.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

/// One line of the token file.
#[derive(Clone, Debug)]
pub struct Grant {
    pub role: Role,
    /// `None`: every ledger (`*`).
    pub ledgers: Option<Vec<String>>,
    hash: [u8; 32],
    pub label: Option<String>,
}

impl Grant {
    /// May this grant do `role` on `ledger` (`None`: a request about no one ledger)?
    pub fn allows(&self, role: Role, ledger: Option<&str>) -> bool {
        self.role >= role && ledger.is_none_or(|l| self.reads(l))
    }

    /// Is `ledger` one of this grant's ledgers?
    pub fn reads(&self, ledger: &str) -> bool {
        self.ledgers
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == ledger))
    }
}

/// The token file, read once at start.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    grants: Vec<Grant>,
}

/// Why a request's credentials do not do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header, or one in another form.
    Missing,
    /// A token that no line of the file holds.
    Unknown,
}

/// A ledger name: 1 to 64 characters of `a-z 0-9 -`.
pub fn valid_ledger_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Tokens {
    /// Reads the token file; a bad line is refused naming its number and what is wrong.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut grants = Vec::new();
        // The line of each grant, for messages.
        let mut lines_of: Vec<usize> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |m: String| format!("line {}: {m}", n + 1);
            let mut fields = line.split_whitespace();
            let (Some(role), Some(ledgers), Some(hash)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(at("expected `ROLE LEDGERS SHA256 [LABEL]`".into()));
            };
            let role = Role::parse(role).ok_or_else(|| {
                at(format!(
                    "unknown role {:?}: use read, write or admin",
                    present::render::visible(role)
                ))
            })?;
            let ledgers = if ledgers == "*" {
                None
            } else {
                let names: Vec<String> = ledgers.split(',').map(str::to_string).collect();
                if let Some(bad) = names.iter().find(|n| !valid_ledger_name(n)) {
                    return Err(at(format!(
                        "invalid ledger name {:?}: use `*` or names of 1 to 64 characters of a-z, 0-9 and -, separated by commas",
                        present::render::visible(bad)
                    )));
                }
                Some(names)
            };
            let mut digest = [0u8; 32];
            match hex::decode(hash) {
                Ok(bytes) if bytes.len() == 32 && hash == hash.to_ascii_lowercase() => {
                    digest.copy_from_slice(&bytes)
                }
                _ => {
                    return Err(at(
                        "the third field must be the lowercase hex SHA-256 of a token (64 characters); \
                         `accord token new ROLE` prints the line to add"
                            .into(),
                    ))
                }
            }
            let label: Vec<&str> = fields.collect();
            if let Some(earlier) = grants.iter().position(|g: &Grant| g.hash == digest) {
                return Err(at(format!(
                    "the same token as line {} (each token is granted once)",
                    lines_of[earlier]
                )));
            }
            lines_of.push(n + 1);
            grants.push(Grant {
                role,
                ledgers,
                hash: digest,
                label: (!label.is_empty()).then(|| label.join(" ")),
            });
        }
        Ok(Tokens { grants })
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// The grant of the token in an `Authorization` header value.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<&Grant, Denied> {
        let token = authorization
            .and_then(bearer)
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        let presented: [u8; 32] = Sha256::digest(token).into();
        // Every line is compared, whatever matched before.
        let mut found: Option<&Grant> = None;
        for grant in &self.grants {
            if bool::from(grant.hash.ct_eq(&presented)) {
                found = Some(grant);
            }
        }
        found.ok_or(Denied::Unknown)
    }
}

/// The token of `Bearer TOKEN` (the scheme in any case, as RFC 9110 says).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// A new random token (256 bits) and the line of the token file that grants it `role` on
/// `ledgers` (`None`: every ledger).
pub fn new_token(
    role: Role,
    ledgers: Option<&[String]>,
    label: Option<&str>,
) -> Result<(String, String), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot draw a random token: {e}"))?;
    let token = format!("accord_{}", hex::encode(bytes));
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let ledgers = match ledgers {
        None => "*".to_string(),
        Some([all]) if all == "*" => "*".to_string(),
        Some(names) => {
            if let Some(bad) = names.iter().find(|n| !valid_ledger_name(n)) {
                return Err(format!(
                    "invalid ledger name {:?}: use names of 1 to 64 characters of a-z, 0-9 and -",
                    present::render::visible(bad)
                ));
            }
            if names.is_empty() {
                return Err("--ledgers needs at least one name".into());
            }
            names.join(",")
        }
    };
    let mut line = format!("{} {ledgers} {hash}", role.as_str());
    if let Some(label) = label.filter(|l| !l.trim().is_empty()) {
        let clean: String = label
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        line.push(' ');
        line.push_str(clean.trim());
    }
    Ok((token, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_is_granted_by_its_line_and_only_it() {
        let (token, line) = new_token(Role::Write, Some(&["main".into()]), Some("ci")).unwrap();
        assert!(token.len() >= 32, "at least 128 bits");
        assert!(!line.contains(&token), "the file never holds the token");
        let tokens = Tokens::parse(&format!("# team\n\n{line}\n")).unwrap();
        let header = format!("Bearer {token}");
        let grant = tokens.check(Some(header.as_bytes())).unwrap();
        assert_eq!(grant.role, Role::Write);
        assert_eq!(grant.label.as_deref(), Some("ci"));
        assert!(grant.allows(Role::Read, Some("main")));
        assert!(grant.allows(Role::Write, Some("main")));
        assert!(!grant.allows(Role::Admin, Some("main")));
        assert!(!grant.allows(Role::Read, Some("other")));
        let lower = format!("bearer  {token} ");
        assert!(tokens.check(Some(lower.as_bytes())).is_ok());
        assert_eq!(
            tokens.check(Some(b"Bearer accord_00")).unwrap_err(),
            Denied::Unknown
        );
        assert_eq!(tokens.check(None).unwrap_err(), Denied::Missing);
        assert_eq!(
            tokens.check(Some(token.as_bytes())).unwrap_err(),
            Denied::Missing
        );
        assert_eq!(
            tokens.check(Some(b"Basic dXNlcjpwYXNz")).unwrap_err(),
            Denied::Missing
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let hash = "a".repeat(64);
        assert!(Tokens::parse(&format!("read * {hash}"))
            .unwrap()
            .grants
            .is_empty()
            .eq(&false));
        for (text, words) in [
            (format!("reader * {hash}"), "line 1: unknown role"),
            ("read *".to_string(), "line 1: expected"),
            (format!("\nread Main {hash}"), "line 2: invalid ledger name"),
            ("read * abc".to_string(), "line 1: the third field"),
            (
                format!("read * {}", hash.to_uppercase()),
                "line 1: the third field",
            ),
        ] {
            let e = Tokens::parse(&text).unwrap_err();
            assert!(e.starts_with(words), "{e}");
        }
    }
}
