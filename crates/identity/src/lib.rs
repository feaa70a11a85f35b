//! # crm-identity
//!
//! Who is calling, verified on every gRPC call (ADR 0012).
//!
//! Every call between CRM processes carries a **call token** in `crm-call-token`: a compact JWS
//! (EdDSA over Ed25519) that the calling process signs for this one call. Its claims say
//! - `iss`: the calling principal (`gateway`, `sales`, …), whose public key the callee holds;
//! - `aud`: the one service it is for, so a token minted for another service is refused;
//! - `rpc`: the one method it is for (`/crm.customer.v1.CustomerService/GetAccount`);
//! - `iat` / `exp`: when it was made and when it stops being valid (seconds later);
//! - `sub` and `ctx`: when the call acts for a user, the user's id and the SHA-256 of the exact
//!   `crm-access-bin` value sent with it, so the access context cannot be swapped, widened or
//!   forged by anyone who lacks the signing key.
//!
//! Layout:
//! - [`keys`]: Ed25519 signing keys (PKCS#8 PEM) and public keys (a JWK's `x`, or SPKI PEM);
//! - [`token`]: the claims, minting ([`Signer`]) and checking ([`Verifier`]) against the
//!   `identity` settings' callers and their grants;
//! - [`server`]: the tower layer every service's gRPC server runs behind ([`VerifyCalls`]): it
//!   refuses unverified calls before any handler runs and hands the handler a [`Caller`];
//! - [`client`]: the tower layer over a client channel that signs each call ([`SignCalls`]);
//! - [`scopes`]: scopes that arrive by reference (a caller with ten thousand shared records),
//!   fetched and cached before the handler runs ([`Scopes`], ADR 0016).
//!
//! Why signed tokens and not a trusted header: anything that can reach a service port inside
//! the cluster could otherwise claim any user and any scope. Why per call and short-lived: a
//! token read off the wire is worth one method, one service, for seconds.
//! Why not only mutual TLS: TLS names the peer process, not the user it acts for nor the scope
//! it was given; the token binds both (TLS can be added beneath it later).

pub mod client;
pub mod keys;
pub mod scopes;
pub mod server;
pub mod token;

pub use client::SignCalls;
pub use keys::{PublicKey, SigningKey};
pub use scopes::{ScopeSource, Scopes};
pub use server::{VerifyCalls, VerifyLayer};
pub use token::{REFUSED, Refusal, Signer, Verifier};

use crm_access::Access;
use crm_errors::{ApiError, Code};

/// The metadata entry carrying the call token.
pub const TOKEN_METADATA: &str = "crm-call-token";

/// Methods anyone may call without a token: health (probed by the kubelet and the gateway's
/// balancer) and server reflection (grpcurl, Postman). The only exceptions, named here once.
pub const OPEN_METHOD_PREFIXES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Why a key, a setting or a token is not usable.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Key(String),
    #[error("identity.{0}")]
    Config(String),
}

/// The verified caller of one call, put in the request's extensions by [`VerifyCalls`].
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The principal that signed the call (`gateway`, `sales`, …).
    pub principal: String,
    /// The user it acts for, with their scopes, when it passed on a user's access context;
    /// `None` when it calls as itself (the method was in its grants).
    pub access: Option<Access>,
}

impl Caller {
    /// The verified caller of `request`. `UNAUTHENTICATED` when there is none: the server does
    /// not run behind [`VerifyCalls`], which must never pass silently.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Caller, ApiError> {
        request.extensions().get::<Caller>().ok_or_else(|| {
            ApiError::new(
                Code::Unauthenticated,
                "the call carries no verified identity",
            )
        })
    }

    /// The access of the user the call acts for; `PERMISSION_DENIED` for a service calling as
    /// itself (owning services serve records to users, and to services only on their behalf).
    pub fn user_access(&self) -> Result<&Access, ApiError> {
        self.access.as_ref().ok_or_else(|| {
            ApiError::new(
                Code::PermissionDenied,
                format!(
                    "{} calls as itself; this method acts for a user",
                    self.principal
                ),
            )
        })
    }
}

/// The access of the user `request` acts for (see [`Caller::user_access`]).
pub fn user_access<T>(request: &tonic::Request<T>) -> Result<Access, ApiError> {
    Ok(Caller::of(request)?.user_access()?.clone())
}

/// Whether `path` (`/package.Service/Method`) is one of the [`OPEN_METHOD_PREFIXES`].
pub fn is_open(path: &str) -> bool {
    OPEN_METHOD_PREFIXES.iter().any(|p| path.starts_with(p))
}
