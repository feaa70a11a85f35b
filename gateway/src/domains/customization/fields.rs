//! Custom fields (`crm.fields.v1.FieldService`): `GET /api/v1/fields/{entity}[/{key}]` for
//! everyone who may read the entity's records (clients draw forms from them), and
//! `/api/v1/admin/fields/{entity}[/{key}]` to define, change and delete them, which needs the
//! `customization` grant. The call goes to the service that owns the entity
//! ([`crate::upstream::fields`]).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_access::{Access, Action, Resource};
use crm_errors::ApiError;
use crm_proto::fields as pb;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::platform::convert::{self, ConversionError, timestamp, uuid};
use crate::platform::error::Result;
use crate::platform::extract::{ApiJson, ApiPath, ApiQuery, IfMatch};
use crate::platform::fields::{bool_from_str, nullable, present};
use crate::platform::response::{created, no_content, with_etag};
use crate::security::Security;
use crate::upstream::fields::Fields;
use crate::upstream::{reply, request as call};

/// What a custom field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    Currency,
    Date,
    DateTime,
    Boolean,
    Select,
    MultiSelect,
    Email,
    Phone,
    Url,
    User,
    Department,
    Lookup,
}

impl FieldType {
    fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(Value::String(name.to_string())).ok()
    }
}

/// A text in Chinese and English (clients show the caller's language, else the other).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    #[serde(default)]
    #[schema(example = "区域")]
    pub zh: String,
    #[serde(default)]
    #[schema(example = "Region")]
    pub en: String,
}

/// An option of a select.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// What records store and conditions compare.
    #[schema(example = "east")]
    pub value: String,
    #[serde(default)]
    pub label: Labels,
    /// A deactivated option stays on the records that hold it; writes may not choose it.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// What a value must satisfy beyond its type.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Text: fewest characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Text: most characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Numbers: the least value, a decimal string (a JSON number is read through its text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "decimal_text"
    )]
    #[schema(value_type = Option<String>, example = "0")]
    pub min: Option<String>,
    /// Numbers: the greatest value.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "decimal_text"
    )]
    #[schema(value_type = Option<String>)]
    pub max: Option<String>,
    /// Text: a regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "[0-9A-Z]{18}")]
    pub pattern: Option<String>,
    /// Decimals: the decimal places kept (default 2; can only grow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
}

fn decimal_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a decimal number, got {other}"
        ))),
    }
}

/// A custom field's definition. Its values travel in records as `custom.<key>`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomField {
    pub id: Uuid,
    /// The resource it belongs to.
    #[schema(example = "account")]
    pub entity: String,
    #[schema(example = "region")]
    pub key: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: Labels,
    pub help: Labels,
    /// New records must give a value; no write may clear it.
    pub required: bool,
    /// No two live records hold the same value.
    pub unique: bool,
    /// Lists filter and sort on it through an index.
    pub indexed: bool,
    /// What a new record gets when it gives none.
    pub default: Option<Value>,
    pub rules: Rules,
    /// Selects: the options, in display order.
    pub options: Vec<Choice>,
    /// Lookups: the resource the id points at.
    pub target: Option<String>,
    /// Currency amounts: the ISO 4217 code.
    pub currency: Option<String>,
    /// Where clients place it (ascending).
    pub position: i32,
    /// A deactivated field is hidden from records and refused on writes; its values are kept.
    pub active: bool,
    /// Bumped by every change; sent as the `ETag` and expected back in `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields of an entity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomFieldList {
    /// Active or not, in position order.
    pub fields: Vec<CustomField>,
}

/// The body of `POST /api/v1/admin/fields/{entity}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomField {
    /// Lower-case letters, digits and `_`, starting with a letter; never reused.
    #[schema(example = "region")]
    pub key: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub label: Labels,
    #[serde(default)]
    pub help: Labels,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub indexed: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub rules: Rules,
    #[serde(default)]
    pub options: Vec<Choice>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    /// Default: after the entity's other fields.
    #[serde(default)]
    pub position: Option<i32>,
}

/// The body of `PATCH /api/v1/admin/fields/{entity}/{key}`: absent parts stay. The key, type,
/// target and currency never change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Labels)]
    pub label: Option<Labels>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Labels)]
    pub help: Option<Labels>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub required: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub unique: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub indexed: Option<bool>,
    /// `null`: no default any more.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub default: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Rules)]
    pub rules: Option<Rules>,
    /// The whole list in its new order: options are never removed (set `active: false`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<Choice>)]
    pub options: Option<Vec<Choice>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i32)]
    pub position: Option<i32>,
    /// `false` deactivates the field (values kept, hidden); `true` brings it back.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub active: Option<bool>,
}

/// `{entity}` of a path.
#[derive(Debug, Deserialize)]
pub struct EntityPath {
    pub entity: String,
}

/// `{entity}/{key}` of a path.
#[derive(Debug, Deserialize)]
pub struct FieldPath {
    pub entity: String,
    pub key: String,
}

/// `PATCH` options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UpdateParams {
    /// Deactivate even while configuration (validation rules, …) uses the field, which then
    /// no longer applies; without it such a change is `409` naming the users.
    #[serde(default, deserialize_with = "bool_from_str")]
    #[param(value_type = Option<bool>)]
    pub force: Option<bool>,
}

/// `DELETE` options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// Delete even while configuration uses the field (see `PATCH`).
    #[serde(default, deserialize_with = "bool_from_str")]
    #[param(value_type = Option<bool>)]
    pub force: Option<bool>,
    /// Also erase the values records hold (audited with how many did); without it a field
    /// that holds values is not deleted (`409`).
    #[serde(default, deserialize_with = "bool_from_str")]
    #[param(value_type = Option<bool>)]
    pub purge: Option<bool>,
}

// --- conversions --------------------------------------------------------------------------

fn labels_from(l: Option<pb::Labels>) -> Labels {
    let l = l.unwrap_or_default();
    Labels { zh: l.zh, en: l.en }
}

fn labels_pb(l: Labels) -> pb::Labels {
    pb::Labels { zh: l.zh, en: l.en }
}

fn choice_pb(c: Choice) -> pb::Choice {
    pb::Choice {
        value: c.value,
        label: Some(labels_pb(c.label)),
        deactivated: !c.active,
    }
}

fn rules_pb(r: Rules) -> pb::Rules {
    pb::Rules {
        min_length: r.min_length,
        max_length: r.max_length,
        min: r.min,
        max: r.max,
        pattern: r.pattern,
        scale: r.scale,
    }
}

impl TryFrom<pb::Field> for CustomField {
    type Error = ConversionError;
    fn try_from(f: pb::Field) -> convert::Result<Self> {
        let r = f.rules.unwrap_or_default();
        Ok(CustomField {
            id: uuid("id", &f.id)?,
            field_type: FieldType::parse(&f.r#type)
                .ok_or_else(|| ConversionError::new("type", format!("unknown {:?}", f.r#type)))?,
            default: f
                .default_json
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|_| ConversionError::new("default_json", "is not JSON"))?,
            created_at: timestamp("created_at", f.created_at)?,
            updated_at: timestamp("updated_at", f.updated_at)?,
            entity: f.entity,
            key: f.key,
            label: labels_from(f.label),
            help: labels_from(f.help),
            required: f.required,
            unique: f.unique,
            indexed: f.indexed,
            rules: Rules {
                min_length: r.min_length,
                max_length: r.max_length,
                min: r.min,
                max: r.max,
                pattern: r.pattern,
                scale: r.scale,
            },
            options: f
                .options
                .into_iter()
                .map(|o| Choice {
                    value: o.value,
                    label: labels_from(o.label),
                    active: !o.deactivated,
                })
                .collect(),
            target: f.target,
            currency: f.currency,
            position: f.position,
            active: f.active,
            version: f.version,
        })
    }
}

impl TryFrom<pb::ListFieldsResponse> for CustomFieldList {
    type Error = ConversionError;
    fn try_from(r: pb::ListFieldsResponse) -> convert::Result<Self> {
        Ok(CustomFieldList {
            fields: r
                .fields
                .into_iter()
                .map(CustomField::try_from)
                .collect::<convert::Result<_>>()?,
        })
    }
}

fn location(entity: &str, key: &str) -> String {
    format!("/api/v1/fields/{entity}/{key}")
}

/// The caller's access with the scopes reading definitions goes by: READ on the entity (its
/// records' forms) or on `customization`. The owning service decides between them; the route
/// cannot name the resource in advance, since it is in the path.
async fn readers(security: &Security, mut access: Access, entity: &str) -> Result<Access> {
    let resource = Resource::parse(entity)
        .ok_or_else(|| ApiError::not_found(&format!("entity {entity:?}")))?;
    let needs = [
        (resource, Action::Read),
        (super::CUSTOMIZATION, Action::Read),
    ];
    let scoped = security.authz.access(access.user_id, &needs).await?;
    for (resource, action) in needs {
        if let Some(scope) = scoped.get(resource, action) {
            access.insert(resource, action, scope.clone());
        }
    }
    Ok(access)
}

async fn fetch(fields: &Fields, access: &Access, entity: &str, key: &str) -> Result<CustomField> {
    reply(fields.client(entity)?.get_field(call(
        pb::GetFieldRequest {
            entity: entity.into(),
            key: key.into(),
        },
        access,
    )))
    .await
}

// --- handlers -----------------------------------------------------------------------------

/// List an entity's custom fields.
#[utoipa::path(get, path = "/api/v1/fields/{entity}", tag = "fields", operation_id = "list_fields",
    description = "Needs `read` on the entity (clients draw its forms from these) or on \
        `customization`.",
    params(("entity" = String, Path, description = "`account` or `contact`")),
    responses((status = 200, description = "Every field, active or not, in position order.", body = CustomFieldList)),
    security(("bearer" = [])))]
pub async fn list(
    State(fields): State<Fields>,
    State(security): State<Security>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<EntityPath>,
) -> Result<Response> {
    let mut client = fields.client(&path.entity)?;
    let access = readers(&security, access, &path.entity).await?;
    let list: CustomFieldList = reply(client.list_fields(call(
        pb::ListFieldsRequest {
            entity: path.entity,
        },
        &access,
    )))
    .await?;
    Ok(axum::Json(list).into_response())
}

/// Read a custom field.
#[utoipa::path(get, path = "/api/v1/fields/{entity}/{key}", tag = "fields", operation_id = "get_field",
    description = "Needs `read` on the entity or on `customization`.",
    params(("entity" = String, Path, description = "`account` or `contact`"),
        ("key" = String, Path, description = "The field's key")),
    responses((status = 200, description = "The field.", body = CustomField,
        headers(("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn get(
    State(fields): State<Fields>,
    State(security): State<Security>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<FieldPath>,
) -> Result<Response> {
    fields.client(&path.entity)?;
    let access = readers(&security, access, &path.entity).await?;
    let field = fetch(&fields, &access, &path.entity, &path.key).await?;
    Ok(with_etag(StatusCode::OK, field.version, &field))
}

/// Define a custom field.
#[utoipa::path(post, path = "/api/v1/admin/fields/{entity}", tag = "fields", operation_id = "admin_create_field",
    description = "No migration runs: values live in the records' `custom` object. Needs the \
        `customization` grant. Send `Idempotency-Key` to make retries safe.",
    params(("entity" = String, Path, description = "`account` or `contact`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this request safe for 24 h")),
    request_body(content = NewCustomField, content_type = "application/json"),
    responses((status = 201, description = "The field.", body = CustomField,
        headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version")))),
    security(("bearer" = [])))]
pub async fn create(
    State(fields): State<Fields>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<EntityPath>,
    ApiJson(body): ApiJson<NewCustomField>,
) -> Result<Response> {
    let field = pb::Field {
        key: body.key,
        r#type: body.field_type.name(),
        label: Some(labels_pb(body.label)),
        help: Some(labels_pb(body.help)),
        required: body.required,
        unique: body.unique,
        indexed: body.indexed,
        default_json: body.default.filter(|d| !d.is_null()).map(|d| d.to_string()),
        rules: Some(rules_pb(body.rules)),
        options: body.options.into_iter().map(choice_pb).collect(),
        target: body.target,
        currency: body.currency,
        position: body.position.unwrap_or_default(),
        ..Default::default()
    };
    let made: CustomField = reply(fields.client(&path.entity)?.create_field(call(
        pb::CreateFieldRequest {
            entity: path.entity,
            field: Some(field),
            has_position: body.position.is_some(),
        },
        &access,
    )))
    .await?;
    Ok(created(
        &location(&made.entity, &made.key),
        made.version,
        &made,
    ))
}

/// Change a custom field.
#[utoipa::path(patch, path = "/api/v1/admin/fields/{entity}/{key}", tag = "fields", operation_id = "admin_update_field",
    description = "Nothing a change does rewrites or breaks a stored value: options are \
        deactivated, never removed; `required` applies to new records and to writes that \
        clear the field; making a field unique is refused while two records share a value.",
    params(("entity" = String, Path, description = "`account` or `contact`"),
        ("key" = String, Path, description = "The field's key"),
        ("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"`), or `*`"),
        UpdateParams),
    request_body(content = CustomFieldPatch, content_type = "application/json"),
    responses((status = 200, description = "The field after the change.", body = CustomField,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = [])))]
pub async fn update(
    State(fields): State<Fields>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<FieldPath>,
    if_match: IfMatch,
    ApiQuery(params): ApiQuery<UpdateParams>,
    ApiJson(patch): ApiJson<CustomFieldPatch>,
) -> Result<Response> {
    let expected_version = if_match
        .or_current(async {
            Ok(fetch(&fields, &access, &path.entity, &path.key)
                .await?
                .version)
        })
        .await?;
    let clear_default = matches!(patch.default, Some(None) | Some(Some(Value::Null)));
    let field: CustomField = reply(fields.client(&path.entity)?.update_field(call(
        pb::UpdateFieldRequest {
            entity: path.entity,
            key: path.key,
            expected_version,
            label: patch.label.map(labels_pb),
            help: patch.help.map(labels_pb),
            required: patch.required,
            unique: patch.unique,
            indexed: patch.indexed,
            default_json: patch.default.flatten().map(|d| d.to_string()),
            clear_default,
            rules: patch.rules.map(rules_pb),
            options: patch.options.map(|items| pb::Choices {
                items: items.into_iter().map(choice_pb).collect(),
            }),
            position: patch.position,
            active: patch.active,
            force: params.force.unwrap_or(false),
        },
        &access,
    )))
    .await?;
    Ok(with_etag(StatusCode::OK, field.version, &field))
}

/// Delete a custom field.
#[utoipa::path(delete, path = "/api/v1/admin/fields/{entity}/{key}", tag = "fields", operation_id = "admin_delete_field",
    description = "Refused (`409`) while records hold values, unless `purge=true`: the values \
        are then hidden at once and erased in the background. The key is never reused.",
    params(("entity" = String, Path, description = "`account` or `contact`"),
        ("key" = String, Path, description = "The field's key"),
        ("If-Match" = Option<String>, Header, description = "When given, deletes only that version"),
        DeleteParams),
    responses((status = 204, description = "Deleted.")),
    security(("bearer" = [])))]
pub async fn delete(
    State(fields): State<Fields>,
    Extension(access): Extension<Access>,
    ApiPath(path): ApiPath<FieldPath>,
    if_match: Option<IfMatch>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> Result<Response> {
    fields
        .client(&path.entity)?
        .delete_field(call(
            pb::DeleteFieldRequest {
                entity: path.entity,
                key: path.key,
                expected_version: if_match.map_or(0, IfMatch::expected_version),
                purge: params.purge.unwrap_or(false),
                force: params.force.unwrap_or(false),
            },
            &access,
        ))
        .await
        .map_err(crate::platform::error::Error::from_status)?;
    Ok(no_content())
}
