//! Sign-in as values: who is asking ([`ClientInfo`]), what a sign-in returns ([`TokenPair`],
//! [`ClientToken`]), why a sign-in failed ([`LoginFailure`]) and why a session ended
//! ([`RevokeReason`]). The throttle rules and the token formats are in [`super::throttle`] and
//! [`super::tokens`]; password hashing in [`crate::password`]. No I/O.

use secrecy::SecretString;
use uuid::Uuid;

use crate::validation::truncate_chars;

/// What a login event keeps of the username as typed.
pub const MAX_LOGGED_USERNAME: usize = 64;

/// Why a session (refresh-token family) ended, as carried by `permission.session.revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    Logout,
    /// A used or revoked refresh token was presented again: it was stolen, or the client is
    /// broken; either way nobody in that family can be trusted.
    Reuse,
    Disabled,
    PasswordChanged,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Reuse => "reuse",
            Self::Disabled => "disabled",
            Self::PasswordChanged => "password_changed",
        }
    }
}

/// Who is asking, as the gateway reports it; bounded before it is stored.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn new(ip: &str, user_agent: &str) -> Self {
        let bounded = |s: &str, max| {
            let s = truncate_chars(s.trim(), max);
            (!s.is_empty()).then_some(s)
        };
        Self {
            ip: bounded(ip, 64),
            user_agent: bounded(user_agent, 512),
        }
    }
}

/// What a successful sign-in or refresh returns.
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: SecretString,
    pub refresh_expires_in: i64,
    pub user_id: Uuid,
}

/// An access token issued to an API client.
pub struct ClientToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// Why a sign-in failed, for the audit event only: the client always gets
/// [`crate::error::INVALID_CREDENTIALS`].
#[derive(Debug, Clone, Copy)]
pub enum LoginFailure {
    UnknownUser,
    WrongPassword,
    NoPassword,
    Disabled,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::NoPassword => "no_password",
            Self::Disabled => "disabled",
        }
    }
}
