//! Staff members, their roles, and who is making a request.

use serde::{Deserialize, Serialize};

/// What a staff member is for. The role decides every action they may take
/// (see [`crate::auth::ROLE_TABLE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Looks up a user's charges and issues small refunds.
    Support,
    /// Previews and approves weekly runs, exports reports, approves large refunds.
    Finance,
    /// Everything, plus managing staff and settings.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 3] = [Role::Support, Role::Finance, Role::Admin];

    /// The stored and typed name: `support`, `finance`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Support => "support",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name; the error says which names exist.
    pub fn parse(value: &str) -> Result<Role, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "support" => Ok(Role::Support),
            "finance" => Ok(Role::Finance),
            "admin" => Ok(Role::Admin),
            other => Err(format!("{other:?} is not a role: use admin, finance or support")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff account as shown to people (never with its password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    pub id: i64,
    pub email: String,
    pub role: Role,
    /// RFC 3339; `None` while the account is active.
    pub disabled_at: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// How a request proved who it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// The dashboard's session cookie.
    Session,
    /// A personal access token in `Authorization: Bearer`.
    Token,
    /// The command line, on behalf of a staff account it names (`billing pricing … --as EMAIL`).
    Cli,
}

/// The authenticated staff member behind a request, put in the request's extensions by the
/// server before any handler runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub staff: Staff,
    pub method: AuthMethod,
    /// The client's address, for the audit log.
    pub source: String,
}

/// A personal access token as its owner sees it (never the secret, which is shown once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: i64,
    pub name: String,
    /// The secret's first characters, to recognise it.
    pub prefix: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// RFC 3339; `None` while the token works.
    pub revoked_at: Option<String>,
}

/// A token just created: the only moment its secret is known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccessToken {
    pub token: AccessToken,
    pub secret: String,
}

/// Normalises and checks an email address: trimmed, lower case, one `@` with text on both
/// sides, no spaces, at most 254 characters.
pub fn parse_email(value: &str) -> Result<String, String> {
    let email = value.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(format!("{:?} is not an email address", value.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("root").unwrap_err().contains("admin, finance or support"));
    }

    #[test]
    fn emails_are_normalised_or_refused() {
        assert_eq!(parse_email("  Ana@Example.COM "), Ok("ana@example.com".into()));
        for bad in
            ["", "ana", "@example.com", "ana@", "ana@example", "a na@example.com", "a@b@c.com", "ana@.com"]
        {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }
}
