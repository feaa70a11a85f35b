//! Who is calling and what they may do: everything a request passes before a domain handler.
//!
//! - [`auth`]: bearer tokens (PEM keys or the permission service's JWKS) and the
//!   [`auth::AuthUser`] extractor; [`principals`]: whether a token's user is still active
//!   (refreshed by permission events); [`token`]: subjects → user ids, development tokens;
//! - [`authz`]: the caller's scopes for a route's resource and action, cached in Redis, handed
//!   to the handler as an [`Access`](crm_access::Access);
//! - [`idempotency`]: the `Idempotency-Key` middleware; [`rate_limit`]: quotas per caller.
//!
//! Domains declare each route's guard with [`Security::permit`], [`Security::signed_in`] or
//! [`Security::public`]; the guard also writes what it demands (bearer token, the resource and
//! action in `x-crm-permission`) into the route's OpenAPI operation, so documentation and
//! enforcement cannot drift apart.

pub mod auth;
pub mod authz;
pub mod idempotency;
pub mod principals;
pub mod rate_limit;
pub mod token;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::middleware::from_fn_with_state;
use crm_access::{Action, Resource};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::{UtoipaMethodRouter, UtoipaMethodRouterExt};

use self::auth::Authenticator;
use self::authz::{Authorizer, Needs};
use self::idempotency::IdempotencyStore;
use self::rate_limit::RateLimiter;

/// The state of the guards. Cheap to clone.
#[derive(Clone)]
pub struct Security {
    pub auth: Arc<Authenticator>,
    pub authz: Authorizer,
    pub idempotency: IdempotencyStore,
    pub rate_limiter: RateLimiter,
    /// `http.body_limit_bytes`, for middleware that buffers bodies itself.
    pub body_limit: usize,
}

impl FromRef<Security> for Arc<Authenticator> {
    fn from_ref(security: &Security) -> Self {
        security.auth.clone()
    }
}

/// The OpenAPI extension naming the grant a route needs (`account:create`).
pub const PERMISSION_EXTENSION: &str = "x-crm-permission";

impl Security {
    /// The routes need `action` on `resource` (403 before the handler runs when it is not
    /// granted at all), plus the scopes in `also` that the handler passes on (READ for the
    /// record a write returns, ASSIGN for a move, …). The handler gets the caller's
    /// [`Access`](crm_access::Access) as an extension.
    pub fn permit<S>(
        &self,
        resource: Resource,
        action: Action,
        also: &'static [(Resource, Action)],
        routes: UtoipaMethodRouter<S>,
    ) -> UtoipaMethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let needs = Needs {
            resource,
            action,
            also,
        };
        let (schemas, mut paths, router) = routes;
        document(&mut paths, Some(format!("{resource}:{action}")));
        let layer = from_fn_with_state(self.clone(), move |state, request, next| {
            Box::pin(authz::authorize(state, Some(needs), request, next)) as authz::PermitFuture
        });
        (schemas, paths, router).map(|router| router.route_layer(layer))
    }

    /// Routes about the caller's own record (`/api/v1/me`): any signed-in user, no grant. The
    /// handler gets an [`Access`](crm_access::Access) without scopes — who the caller is, where
    /// the call comes from, their time zone and language — and the service decides that they
    /// act on themselves.
    pub fn signed_in<S>(&self, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (schemas, mut paths, router) = routes;
        document(&mut paths, None);
        let layer = from_fn_with_state(self.clone(), move |state, request, next| {
            Box::pin(authz::authorize(state, None, request, next)) as authz::PermitFuture
        });
        (schemas, paths, router).map(|router| router.route_layer(layer))
    }

    /// Routes that need no token: signing in, the keys that verify tokens. They still spend
    /// the caller's address quota (the rate limit wraps the whole API).
    pub fn public<S>(&self, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
        routes
    }

    /// Makes a POST safe to retry with `Idempotency-Key` (see [`idempotency`]). Only creates
    /// need it: PATCH and DELETE are guarded by `If-Match`. Apply before [`Security::permit`],
    /// so the grant is checked first.
    pub fn idempotent<S>(&self, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let layer = from_fn_with_state(self.clone(), idempotency::idempotency);
        routes.map(|router| router.route_layer(layer))
    }
}

/// Marks every operation in `paths` as needing a bearer token, and names the grant.
fn document(paths: &mut utoipa::openapi::path::Paths, permission: Option<String>) {
    for item in paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            operation.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
            if let Some(permission) = &permission {
                let extension = ExtensionsBuilder::new()
                    .add(PERMISSION_EXTENSION, permission.clone())
                    .build();
                operation
                    .extensions
                    .get_or_insert_with(Default::default)
                    .merge(extension);
            }
        }
    }
}
