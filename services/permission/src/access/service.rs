//! The use cases of decisions ([`Access`]): each loads one snapshot ([`super::store`]) and
//! hands it to the pure decision functions ([`super::domain`]).

use sqlx::PgPool;
use uuid::Uuid;

use super::domain::{self, CompiledScope, Decision, Explanation, RecordRef};
use super::store;
use crate::error::Result;
use crate::org::domain::{Action, Resource};

/// Decisions: each loads one snapshot and hands it to [`super::domain`].
#[derive(Clone)]
pub struct Access {
    pool: PgPool,
}

impl Access {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn snapshot(&self, user_id: Uuid, resource: Resource) -> Result<domain::Snapshot> {
        let mut conn = self.pool.acquire().await?;
        store::load_snapshot(&mut conn, user_id, resource).await
    }

    #[tracing::instrument(name = "check", skip_all, fields(%resource, %action))]
    pub async fn check(
        &self,
        user_id: Uuid,
        resource: Resource,
        action: Action,
        record: Option<RecordRef>,
    ) -> Result<Decision> {
        let s = self.snapshot(user_id, resource).await?;
        let d = domain::check(&s, resource, action, record.as_ref());
        metrics::counter!(
            "crm_permission_checks_total",
            "allowed" => if d.allowed { "true" } else { "false" }
        )
        .increment(1);
        Ok(d)
    }

    #[tracing::instrument(name = "compile scope", skip_all, fields(%resource, %action))]
    pub async fn compile_scope(
        &self,
        user_id: Uuid,
        resource: Resource,
        action: Action,
    ) -> Result<CompiledScope> {
        let s = self.snapshot(user_id, resource).await?;
        Ok(domain::compile(&s, resource, action))
    }

    #[tracing::instrument(name = "explain", skip_all, fields(%resource, %action))]
    pub async fn explain(
        &self,
        user_id: Uuid,
        resource: Resource,
        action: Action,
        record: Option<RecordRef>,
    ) -> Result<Explanation> {
        let s = self.snapshot(user_id, resource).await?;
        Ok(domain::explain(&s, resource, action, record.as_ref()))
    }

    pub async fn permission_version(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        crate::org::store::permission_version(&mut conn).await
    }
}

/// The permission service resolves the scopes its own callers send by reference (ADR 0016)
/// from its own decisions, without a call.
impl crm_identity::ScopeSource for Access {
    fn compile(
        &self,
        user: Uuid,
        resource: Resource,
        action: crm_access::Action,
    ) -> crm_identity::scopes::ScopeFuture<'_> {
        Box::pin(async move {
            let action = Action::parse(action.as_str()).ok_or_else(|| {
                crm_errors::ApiError::new(
                    crm_errors::Code::InvalidArgument,
                    format!("unknown action {action}"),
                )
            })?;
            let compiled = self.compile_scope(user, resource, action).await?;
            crm_access::Scope::try_from(crm_proto::permission::CompiledScope::from(compiled))
        })
    }
}
