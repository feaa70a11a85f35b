//! `/api/v1/admin/resources`: the registry of resources and their fields
//! (`crm.permission.v1.RegistryService`) — what grants, shares, field rules and sharing
//! conditions may name. The owning services declare it when they start; an administrator's
//! field-rule editor reads it from here.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_access::Access;
use crm_proto::permission as pb;
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::convert::{self, ConversionError};
use crate::platform::error::Result;
use crate::upstream::permission::PermissionService;
use crate::upstream::{reply, request as call};

/// A field of a resource.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceField {
    #[schema(example = "phone")]
    pub name: String,
    /// `text`, `email`, `phone`, `url`, `choice`, `text_list`, `reference`, `timestamp` or
    /// `integer`; only text kinds can be masked.
    #[schema(example = "phone")]
    pub kind: String,
    /// Field rules may hide or mask it (never ids, versions, owner, department, timestamps).
    pub governed: bool,
    /// A sharing rule's condition may test it.
    pub condition: bool,
    /// Declared with the resource; `false` for a custom field.
    pub built_in: bool,
    /// Still declared by its service; rules naming an inactive field keep working, new ones
    /// may not name it.
    pub active: bool,
}

/// A resource: what grants, shares and rules are about.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegisteredResource {
    #[schema(example = "account")]
    pub name: String,
    /// The service that owns its records.
    #[schema(example = "customer")]
    pub owner: String,
    /// When its service last declared it; `null` while it never has (it then has no fields).
    pub declared_at: Option<DateTime<Utc>>,
    pub fields: Vec<ResourceField>,
}

/// Every resource.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceList {
    /// By name.
    pub items: Vec<RegisteredResource>,
}

impl TryFrom<pb::ListResourcesResponse> for ResourceList {
    type Error = ConversionError;
    fn try_from(r: pb::ListResourcesResponse) -> convert::Result<Self> {
        Ok(ResourceList {
            items: r
                .resources
                .into_iter()
                .map(|r| {
                    Ok(RegisteredResource {
                        declared_at: r
                            .declared_at
                            .map(|t| convert::timestamp("declared_at", Some(t)))
                            .transpose()?,
                        name: r.name,
                        owner: r.owner,
                        fields: r
                            .fields
                            .into_iter()
                            .map(|f| ResourceField {
                                name: f.name,
                                kind: f.kind,
                                governed: f.governed,
                                condition: f.condition,
                                built_in: f.built_in,
                                active: f.active,
                            })
                            .collect(),
                    })
                })
                .collect::<convert::Result<_>>()?,
        })
    }
}

/// List the resources and their fields.
#[utoipa::path(get, path = "/api/v1/admin/resources", tag = "admin", operation_id = "admin_list_resources",
    responses((status = 200, description = "Every registered resource with its fields, by name.", body = ResourceList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<PermissionService>,
    Extension(access): Extension<Access>,
) -> Result<Response> {
    let list: ResourceList = reply(
        state
            .registry()
            .list_resources(call(pb::ListResourcesRequest {}, &access)),
    )
    .await?;
    Ok(axum::Json(list).into_response())
}
