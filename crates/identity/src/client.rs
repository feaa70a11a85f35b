//! The client side: a channel wrapped in [`SignCalls`] signs every call it carries, for the
//! one service it leads to. A call that carries a user's access context (`crm-access-bin`,
//! set on the request before it gets here) is signed with that context bound to it; any other
//! is signed as the calling process itself.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::HeaderValue;

use crate::TOKEN_METADATA;
use crate::token::Signer;

/// A client channel (or any HTTP/2 service) that adds a call token to every request.
#[derive(Debug, Clone)]
pub struct SignCalls<S> {
    inner: S,
    signer: Arc<Signer>,
    audience: Arc<str>,
}

impl<S> SignCalls<S> {
    /// Signs the calls `inner` carries to the service named `audience`.
    pub fn new(inner: S, signer: Arc<Signer>, audience: &str) -> Self {
        SignCalls {
            inner,
            signer,
            audience: audience.into(),
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for SignCalls<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let token = self.signer.token(
            &self.audience,
            request.uri().path(),
            request
                .headers()
                .get(crm_access::METADATA_KEY)
                .map(|v| v.as_bytes()),
            SystemTime::now(),
        );
        let value = HeaderValue::from_str(&token).expect("a call token is base64url and dots");
        request.headers_mut().insert(TOKEN_METADATA, value);
        self.inner.call(request)
    }
}
