//! The server side: every service's gRPC server runs behind [`VerifyLayer`] (`crm-host` adds
//! it), so no handler runs for a call whose identity is not verified.
//!
//! The check happens on the HTTP/2 request, before the body is decoded: a refused call costs
//! one signature check and never reaches a handler, a database or a log line of the service's
//! own. Health and reflection ([`crate::OPEN_METHOD_PREFIXES`]) pass unchecked.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use crate::scopes::Scopes;
use crate::token::Verifier;
use crate::{Caller, TOKEN_METADATA, is_open};

/// Wraps a gRPC server's routes in [`VerifyCalls`].
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Arc<Verifier>,
    scopes: Option<Scopes>,
}

impl VerifyLayer {
    pub fn new(verifier: Verifier) -> Self {
        VerifyLayer {
            verifier: Arc::new(verifier),
            scopes: None,
        }
    }

    /// Resolves scopes that arrive by reference with `scopes` (ADR 0016). Without it, a call
    /// carrying one is refused (`UNAVAILABLE`): a service that serves users' records needs it.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = Some(scopes);
        self
    }
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyCalls<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyCalls {
            inner,
            verifier: self.verifier.clone(),
            scopes: self.scopes.clone(),
        }
    }
}

/// Refuses (`UNAUTHENTICATED`) every call without a valid call token for this service and
/// method, and hands the others to the handler with their [`crate::Caller`] in the request's
/// extensions.
#[derive(Debug, Clone)]
pub struct VerifyCalls<S> {
    inner: S,
    verifier: Arc<Verifier>,
    scopes: Option<Scopes>,
}

/// Fetches what arrived by reference into `caller`'s access (nothing to do for most calls).
async fn resolve(scopes: Option<&Scopes>, caller: &mut Caller) -> Result<(), tonic::Status> {
    let Some(access) = caller.access.as_mut() else {
        return Ok(());
    };
    match scopes {
        Some(scopes) => scopes.resolve(access).await.map_err(tonic::Status::from),
        None => Err(tonic::Status::unavailable(
            "this service cannot fetch a scope sent by reference (it has no permission service)",
        )),
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for VerifyCalls<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if !is_open(path) {
            let headers = request.headers();
            let mut contexts = headers.get_all(crm_access::METADATA_KEY).iter();
            let access = contexts.next().map(|v| v.as_bytes());
            let verdict = if contexts.next().is_some() {
                Err(crate::token::Refusal::BadContext("sent twice".into()))
            } else {
                self.verifier.verify(
                    path,
                    headers.get(TOKEN_METADATA).map(|v| v.as_bytes()),
                    access,
                    SystemTime::now(),
                )
            };
            match verdict {
                Ok(mut caller)
                    if caller
                        .access
                        .as_ref()
                        .is_some_and(|a| a.unresolved().next().is_some()) =>
                {
                    let scopes = self.scopes.clone();
                    let clone = self.inner.clone();
                    let mut inner = std::mem::replace(&mut self.inner, clone);
                    return Box::pin(async move {
                        if let Err(status) = resolve(scopes.as_ref(), &mut caller).await {
                            return Ok(status.into_http());
                        }
                        request.extensions_mut().insert(caller);
                        inner.call(request).await
                    });
                }
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                }
                Err(refusal) => {
                    tracing::warn!(rpc = %path, %refusal, "call refused");
                    let status = tonic::Status::unauthenticated(refusal.to_string());
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        // The ready service handles this call; its clone waits for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}
