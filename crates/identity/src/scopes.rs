//! Scopes that arrive by reference (ADR 0016), resolved before any handler runs.
//!
//! A caller's scope can be large: ten thousand records shared one by one, a manager of
//! thousands, a subtree of hundreds of departments. Carried whole, such a context outgrows
//! HTTP/2's header limits (16 KiB by default) and every call would pay for it. So
//! `crm_access::Access::encode` sends a scope over [`crm_access::INLINE_SCOPE_LIMIT`] as a
//! reference (resource, action, permission version), and the receiving service asks
//! `CompileScope` for it as itself, through a [`ScopeSource`].
//!
//! [`Scopes`] keeps the answers by user, resource, action and permission version: a permission
//! change bumps the version, so an entry is never stale, only unused, and it ages out. The cache
//! is bounded by the number of ids it holds, not by entries, because one entry may hold ten
//! thousand of them.
//!
//! Why not let the gateway raise the header limit instead: every service, proxy and sidecar on
//! the way would have to agree, every call of that user would carry hundreds of KiB, and the
//! signature check would hash them each time.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crm_access::{Access, Action, Resource, Scope};
use crm_errors::{ApiError, Code};
use uuid::Uuid;

/// A boxed future, for the object-safe [`ScopeSource`].
pub type ScopeFuture<'a> = Pin<Box<dyn Future<Output = Result<Scope, ApiError>> + Send + 'a>>;

/// Where a service gets a scope that arrived by reference: the permission service's
/// `CompileScope` over gRPC (`crm_host`), or the permission service's own decisions.
pub trait ScopeSource: Send + Sync + 'static {
    fn compile(&self, user: Uuid, resource: Resource, action: Action) -> ScopeFuture<'_>;
}

/// How many ids (owners, departments, shared records) the cache holds at most, across
/// entries: about 16 bytes each, so some 32 MiB.
pub const DEFAULT_CAPACITY: usize = 2_000_000;

type Key = (Uuid, Resource, Action, i64);

struct Entry {
    scope: Arc<Scope>,
    weight: usize,
    used: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, Entry>,
    weight: usize,
    clock: u64,
}

/// A [`ScopeSource`] behind a bounded cache. Cheap to clone.
#[derive(Clone)]
pub struct Scopes {
    source: Arc<dyn ScopeSource>,
    cache: Arc<Mutex<Lru>>,
    capacity: usize,
}

impl std::fmt::Debug for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scopes")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn weight(scope: &Scope) -> usize {
    1 + scope.owner_ids.len()
        + scope.department_ids.len()
        + scope.record_ids.len()
        + scope.conditions.len()
        + scope.fields.len()
}

impl Scopes {
    pub fn new(source: Arc<dyn ScopeSource>) -> Self {
        Self::with_capacity(source, DEFAULT_CAPACITY)
    }

    /// A cache holding at most `capacity` ids (see [`DEFAULT_CAPACITY`]).
    pub fn with_capacity(source: Arc<dyn ScopeSource>, capacity: usize) -> Self {
        Scopes {
            source,
            cache: Arc::new(Mutex::new(Lru::default())),
            capacity,
        }
    }

    fn cached(&self, key: &Key) -> Option<Arc<Scope>> {
        let mut lru = self.cache.lock().expect("scope cache lock");
        lru.clock += 1;
        let now = lru.clock;
        let entry = lru.entries.get_mut(key)?;
        entry.used = now;
        Some(entry.scope.clone())
    }

    fn store(&self, key: Key, scope: Arc<Scope>) {
        let weight = weight(&scope);
        if weight > self.capacity {
            return;
        }
        let mut lru = self.cache.lock().expect("scope cache lock");
        lru.clock += 1;
        let used = lru.clock;
        if let Some(old) = lru.entries.insert(
            key,
            Entry {
                scope,
                weight,
                used,
            },
        ) {
            lru.weight -= old.weight;
        }
        lru.weight += weight;
        // Evict the least recently used until it fits. A scan, not a linked list: it runs only
        // after a fetch over the network, which costs far more than walking the entries.
        while lru.weight > self.capacity {
            let Some(oldest) = lru
                .entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(gone) = lru.entries.remove(&oldest) {
                lru.weight -= gone.weight;
            }
        }
    }

    /// One scope sent by reference at `version`: from the cache, else from the source. An
    /// answer older than `version` is refused (`UNAVAILABLE`, retriable): the source lags behind
    /// what the gateway already saw, and an older scope may still hold a revoked share.
    pub async fn get(
        &self,
        user: Uuid,
        resource: Resource,
        action: Action,
        version: i64,
    ) -> Result<Arc<Scope>, ApiError> {
        let key = (user, resource, action, version);
        if let Some(scope) = self.cached(&key) {
            metrics::counter!("crm_access_scope_references_total", "outcome" => "cached")
                .increment(1);
            return Ok(scope);
        }
        let fetched = self.source.compile(user, resource, action).await;
        let scope = match fetched {
            Ok(scope) if scope.permission_version >= version => Arc::new(scope),
            Ok(scope) => {
                metrics::counter!("crm_access_scope_references_total", "outcome" => "stale")
                    .increment(1);
                return Err(ApiError::new(
                    Code::Unavailable,
                    format!(
                        "the permission service answered at version {} for a scope made at {version}; retry",
                        scope.permission_version
                    ),
                ));
            }
            Err(err) => {
                metrics::counter!("crm_access_scope_references_total", "outcome" => "failed")
                    .increment(1);
                tracing::warn!(error = %err, %resource, %action, "a scope sent by reference could not be fetched");
                return Err(ApiError::new(
                    Code::Unavailable,
                    "the caller's scope could not be fetched from the permission service; retry",
                ));
            }
        };
        metrics::counter!("crm_access_scope_references_total", "outcome" => "fetched").increment(1);
        self.store(key, scope.clone());
        Ok(scope)
    }

    /// Resolves every scope of `access` that arrived by reference.
    pub async fn resolve(&self, access: &mut Access) -> Result<(), ApiError> {
        let pending: Vec<_> = access.unresolved().collect();
        let user = access.user_id;
        let fetched = futures::future::try_join_all(
            pending
                .iter()
                .map(|&(resource, action, version)| self.get(user, resource, action, version)),
        )
        .await?;
        for ((resource, action, _), scope) in pending.into_iter().zip(fetched) {
            access.insert(resource, action, Scope::clone(&scope));
        }
        Ok(())
    }

    /// How many ids the cache holds now (for tests and metrics).
    pub fn weight(&self) -> usize {
        self.cache.lock().expect("scope cache lock").weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers scopes of `shared` records at a version the test sets, counting calls.
    struct Fake {
        shared: usize,
        version: std::sync::atomic::AtomicI64,
        calls: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    impl ScopeSource for Fake {
        fn compile(&self, user: Uuid, _: Resource, _: Action) -> ScopeFuture<'_> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let fail = self.fail.load(Ordering::SeqCst);
            let scope = Scope {
                owner_ids: vec![user],
                record_ids: (0..self.shared as u128).map(Uuid::from_u128).collect(),
                permission_version: self.version.load(Ordering::SeqCst),
                ..Default::default()
            };
            Box::pin(async move {
                if fail {
                    Err(ApiError::new(Code::Unavailable, "down"))
                } else {
                    Ok(scope)
                }
            })
        }
    }

    fn fake(shared: usize, version: i64) -> Arc<Fake> {
        Arc::new(Fake {
            shared,
            version: version.into(),
            calls: AtomicUsize::new(0),
            fail: false.into(),
        })
    }

    fn referenced(user: Uuid, shared: usize, version: i64) -> Access {
        let big = Scope {
            owner_ids: vec![user],
            record_ids: (0..shared as u128).map(Uuid::from_u128).collect(),
            permission_version: version,
            ..Default::default()
        };
        let access = Access::new(user).with(Resource::ACCOUNT, Action::Read, big);
        Access::decode(&access.encode()).unwrap()
    }

    #[tokio::test]
    async fn references_are_fetched_once_per_version() {
        let source = fake(10_000, 7);
        let scopes = Scopes::new(source.clone());
        let user = Uuid::from_u128(99);
        for _ in 0..3 {
            let mut access = referenced(user, 10_000, 7);
            assert_eq!(access.unresolved().count(), 1);
            scopes.resolve(&mut access).await.unwrap();
            let scope = access.scope(Resource::ACCOUNT, Action::Read).unwrap();
            assert_eq!(scope.record_ids.len(), 10_000);
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);

        // A new permission version is a new key: fetched again.
        source.version.store(8, Ordering::SeqCst);
        scopes
            .resolve(&mut referenced(user, 10_000, 8))
            .await
            .unwrap();
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_answer_older_than_the_reference_or_a_failure_is_unavailable() {
        let source = fake(5_000, 3);
        let scopes = Scopes::new(source.clone());
        let err = scopes
            .resolve(&mut referenced(Uuid::from_u128(1), 5_000, 4))
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::Unavailable);

        source.version.store(4, Ordering::SeqCst);
        source.fail.store(true, Ordering::SeqCst);
        let err = scopes
            .resolve(&mut referenced(Uuid::from_u128(1), 5_000, 4))
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::Unavailable);
        assert_eq!(scopes.weight(), 0, "nothing cached from failures");
    }

    #[tokio::test]
    async fn the_cache_is_bounded_by_ids_and_drops_the_least_recently_used() {
        let source = fake(1_000, 1);
        let scopes = Scopes::with_capacity(source.clone(), 2_500);
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        scopes
            .get(a, Resource::ACCOUNT, Action::Read, 1)
            .await
            .unwrap();
        scopes
            .get(b, Resource::ACCOUNT, Action::Read, 1)
            .await
            .unwrap();
        // `a` used again, so `b` is the oldest when `c` needs room.
        scopes
            .get(a, Resource::ACCOUNT, Action::Read, 1)
            .await
            .unwrap();
        scopes
            .get(c, Resource::ACCOUNT, Action::Read, 1)
            .await
            .unwrap();
        assert!(scopes.weight() <= 2_500);
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
        scopes
            .get(a, Resource::ACCOUNT, Action::Read, 1)
            .await
            .unwrap();
        assert_eq!(source.calls.load(Ordering::SeqCst), 3, "a stayed");
        scopes
            .get(b, Resource::ACCOUNT, Action::Read, 1)
            .await
            .unwrap();
        assert_eq!(source.calls.load(Ordering::SeqCst), 4, "b was dropped");
    }
}
