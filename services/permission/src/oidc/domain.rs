//! Single sign-on as values: the PKCE challenge, the provider's claim rules, the username a new
//! SSO user gets, and the random values a sign-in starts with. No I/O.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::settings::OidcProvider;
use crate::users::domain::{MAX_USERNAME, MIN_USERNAME};

/// What the client is told for every failed SSO sign-in.
pub const SSO_FAILED: &str = "single sign-on failed: start again";

/// How long a started sign-in may take.
pub const LOGIN_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// 32 random bytes, base64url: a `state`, a `nonce`, a PKCE verifier.
pub fn random() -> Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Crypto("no randomness".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The S256 PKCE challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// Whether a claim holds `value`: equal to it, or a list containing it.
fn claim_has(claims: &Value, claim: &str, value: &str) -> bool {
    match claims.get(claim) {
        Some(Value::String(s)) => s == value,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
        Some(Value::Bool(b)) => b.to_string() == value,
        _ => false,
    }
}

/// The roles and department the provider's rules give a user with these claims.
pub fn apply_rules(provider: &OidcProvider, claims: &Value) -> (Vec<String>, Option<String>) {
    let mut roles: Vec<String> = Vec::new();
    let mut department = None;
    for rule in &provider.claim_rules {
        if claim_has(claims, &rule.claim, &rule.equals) {
            for role in &rule.roles {
                if !roles.contains(role) {
                    roles.push(role.clone());
                }
            }
            department = department.or_else(|| rule.department.clone());
        }
    }
    (roles, department)
}

/// A username for a new SSO user: the provider's claim, made to fit the username rules, with a
/// suffix when taken.
pub fn username_base(claims: &Value, claim: &str, subject: &str) -> String {
    let raw = claims
        .get(claim)
        .and_then(Value::as_str)
        .unwrap_or(subject)
        .to_lowercase();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_USERNAME - 9)
        .collect();
    while name.chars().count() < MIN_USERNAME {
        name.push('_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ClaimRule;

    fn provider() -> OidcProvider {
        OidcProvider {
            name: "corp".into(),
            issuer: "https://idp.example".into(),
            client_id: "crm".into(),
            client_secret: secrecy::SecretString::from("s"),
            redirect_uri: "https://crm.example/cb".into(),
            scopes: vec!["openid".into()],
            username_claim: "preferred_username".into(),
            create_users: true,
            claim_rules: vec![
                ClaimRule {
                    claim: "groups".into(),
                    equals: "sales-east".into(),
                    roles: vec!["sales_rep".into()],
                    department: Some("East Sales".into()),
                },
                ClaimRule {
                    claim: "groups".into(),
                    equals: "managers".into(),
                    roles: vec!["sales_manager".into(), "sales_rep".into()],
                    department: Some("Sales".into()),
                },
            ],
        }
    }

    #[test]
    fn claim_rules_unite_roles_and_the_first_department_wins() {
        let claims = serde_json::json!({"groups": ["sales-east", "managers"]});
        let (roles, department) = apply_rules(&provider(), &claims);
        assert_eq!(roles, ["sales_rep", "sales_manager"]);
        assert_eq!(department.as_deref(), Some("East Sales"));
        let (roles, department) = apply_rules(&provider(), &serde_json::json!({"groups": "x"}));
        assert!(roles.is_empty() && department.is_none());
    }

    #[test]
    fn usernames_are_made_to_fit() {
        let claims = serde_json::json!({"preferred_username": "Zhang San"});
        assert_eq!(
            username_base(&claims, "preferred_username", "s1"),
            "zhang_san"
        );
        assert_eq!(
            username_base(&serde_json::json!({}), "preferred_username", "x"),
            "x__"
        );
    }

    #[test]
    fn pkce_challenge_is_s256() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
