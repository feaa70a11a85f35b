//! Validation rules across fields (`crm.fields.v1.FieldService`):
//! `/api/v1/admin/validation-rules/{entity}[/{key}]`, under the `customization` grants. A rule
//! is a condition (ADR 0017) a record must not match, with a message in Chinese and English;
//! the owning service checks every create and update against the active ones.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_access::Access;
use crm_proto::fields as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::fields::{EntityPath, FieldPath, Labels};
use crate::platform::convert::{self, ConversionError, timestamp, uuid};
use crate::platform::error::{Error, Result};
use crate::platform::extract::{ApiJson, ApiPath, IfMatch};
use crate::platform::fields::{nullable, present};
use crate::platform::response::{created, no_content, with_etag};
use crate::upstream::fields::Fields;
use crate::upstream::{reply, request as call};

/// A validation rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidationRule {
    pub id: Uuid,
    #[schema(example = "account")]
    pub entity: String,
    #[schema(example = "close_date_when_active")]
    pub key: String,
    /// What a record must not match.
    #[schema(example = "lifecycle_status = 'active' and custom.close_date is empty")]
    pub condition: String,
    /// Shown to the writer, in their language.
    pub message: Labels,
    /// Where the violation is reported; `null`: `record`.
    #[schema(example = "custom.close_date")]
    pub field: Option<String>,
    pub active: bool,
    /// Bumped by every change; sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An entity's rules.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidationRuleList {
    pub rules: Vec<ValidationRule>,
}

/// The body of `POST /api/v1/admin/validation-rules/{entity}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewValidationRule {
    pub key: String,
    pub condition: String,
    pub message: Labels,
    #[serde(default)]
    pub field: Option<String>,
    /// Default `true`.
    #[serde(default)]
    pub active: Option<bool>,
}

/// The body of `PATCH /api/v1/admin/validation-rules/{entity}/{key}`: absent parts stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationRulePatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub condition: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Labels)]
    pub message: Option<Labels>,
    /// `null`: the record as a whole.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub field: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub active: Option<bool>,
}

impl TryFrom<pb::ValidationRule> for ValidationRule {
    type Error = ConversionError;
    fn try_from(r: pb::ValidationRule) -> convert::Result<Self> {
        let message = r.message.unwrap_or_default();
        Ok(ValidationRule {
            id: uuid("id", &r.id)?,
            created_at: timestamp("created_at", r.created_at)?,
            updated_at: timestamp("updated_at", r.updated_at)?,
            entity: r.entity,
            key: r.key,
            condition: r.condition,
            message: Labels {
                zh: message.zh,
                en: message.en,
            },
            field: (!r.field.is_empty()).then_some(r.field),
            active: r.active,
            version: r.version,
        })
    }
}

impl TryFrom<pb::ListValidationRulesResponse> for ValidationRuleList {
    type Error = ConversionError;
    fn try_from(r: pb::ListValidationRulesResponse) -> convert::Result<Self> {
        Ok(ValidationRuleList {
            rules: r
                .rules
                .into_iter()
                .map(ValidationRule::try_from)
                .collect::<convert::Result<_>>()?,
        })
    }
}

fn labels_pb(l: Labels) -> pb::Labels {
    pb::Labels { zh: l.zh, en: l.en }
}

/// List an entity's validation rules.
#[utoipa::path(get, path = "/api/v1/admin/validation-rules/{entity}", tag = "fields", operation_id = "admin_list_validation_rules",
    params(("entity" = String, Path, description = "`account` or `contact`")),
    responses((status = 200, description = "Every rule, in key order.", body = ValidationRuleList)),
    security(("bearer" = [])))]
pub async fn list(
    State(fields): State<Fields>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<EntityPath>,
) -> Result<Response> {
    let list: ValidationRuleList = reply(fields.client(&path.entity)?.list_validation_rules(call(
        pb::ListValidationRulesRequest {
            entity: path.entity,
        },
        &access,
    )))
    .await?;
    Ok(axum::Json(list).into_response())
}

/// Define a validation rule.
#[utoipa::path(post, path = "/api/v1/admin/validation-rules/{entity}", tag = "fields", operation_id = "admin_create_validation_rule",
    description = "A condition that does not parse or type is `400` on `condition` with the \
        position. Send `Idempotency-Key` to make retries safe.",
    params(("entity" = String, Path, description = "`account` or `contact`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this request safe for 24 h")),
    request_body(content = NewValidationRule, content_type = "application/json"),
    responses((status = 201, description = "The rule.", body = ValidationRule,
        headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn create(
    State(fields): State<Fields>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<EntityPath>,
    ApiJson(body): ApiJson<NewValidationRule>,
) -> Result<Response> {
    let rule: ValidationRule = reply(fields.client(&path.entity)?.create_validation_rule(call(
        pb::CreateValidationRuleRequest {
            entity: path.entity,
            key: body.key,
            condition: body.condition,
            message: Some(labels_pb(body.message)),
            field: body.field.unwrap_or_default(),
            inactive: body.active == Some(false),
        },
        &access,
    )))
    .await?;
    Ok(created(
        &format!(
            "/api/v1/admin/validation-rules/{}/{}",
            rule.entity, rule.key
        ),
        rule.version,
        &rule,
    ))
}

/// Change a validation rule.
#[utoipa::path(patch, path = "/api/v1/admin/validation-rules/{entity}/{key}", tag = "fields", operation_id = "admin_update_validation_rule",
    params(("entity" = String, Path, description = "`account` or `contact`"),
        ("key" = String, Path, description = "The rule's key"),
        ("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"`)")),
    request_body(content = ValidationRulePatch, content_type = "application/json"),
    responses((status = 200, description = "The rule after the change.", body = ValidationRule,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn update(
    State(fields): State<Fields>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<FieldPath>,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<ValidationRulePatch>,
) -> Result<Response> {
    let entity = path.entity.clone();
    let key = path.key.clone();
    let expected_version = if_match
        .or_current(async {
            let list: ValidationRuleList =
                reply(fields.client(&entity)?.list_validation_rules(call(
                    pb::ListValidationRulesRequest {
                        entity: entity.clone(),
                    },
                    &access,
                )))
                .await?;
            list.rules
                .into_iter()
                .find(|r| r.key == key)
                .map(|r| r.version)
                .ok_or_else(|| {
                    Error::from(crm_errors::ApiError::not_found(&format!(
                        "validation rule {entity}.{key}"
                    )))
                })
        })
        .await?;
    let rule: ValidationRule = reply(fields.client(&path.entity)?.update_validation_rule(call(
        pb::UpdateValidationRuleRequest {
            entity: path.entity,
            key: path.key,
            expected_version,
            condition: patch.condition,
            message: patch.message.map(labels_pb),
            field: patch.field.map(Option::unwrap_or_default),
            active: patch.active,
        },
        &access,
    )))
    .await?;
    Ok(with_etag(StatusCode::OK, rule.version, &rule))
}

/// Delete a validation rule.
#[utoipa::path(delete, path = "/api/v1/admin/validation-rules/{entity}/{key}", tag = "fields", operation_id = "admin_delete_validation_rule",
    params(("entity" = String, Path, description = "`account` or `contact`"),
        ("key" = String, Path, description = "The rule's key"),
        ("If-Match" = Option<String>, Header, description = "When given, deletes only that version")),
    responses((status = 204, description = "Deleted.")),
    security(("bearer" = [])))]
pub async fn delete(
    State(fields): State<Fields>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<FieldPath>,
    if_match: Option<IfMatch>,
) -> Result<Response> {
    fields
        .client(&path.entity)?
        .delete_validation_rule(call(
            pb::DeleteValidationRuleRequest {
                entity: path.entity,
                key: path.key,
                expected_version: if_match.map_or(0, IfMatch::expected_version),
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}
