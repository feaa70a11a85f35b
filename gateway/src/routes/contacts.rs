//! `/api/v1/contacts`: one handler per `CustomerService` contact call.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_proto::customer as pb;
use futures::StreamExt;

use super::{created, export, no_content, visible, visible_list, with_etag};
use crate::convert::ContactUpdate;
use crate::customer::request;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiQuery, IdPath, IfMatch};
use crate::model::{
    Contact, ContactList, ContactPatch, ExportContactsParams, ListContactsParams, NewContact,
};
use crate::startup::AppState;
use crm_access::{Access, Resource};

/// Create a contact.
///
/// Send `Idempotency-Key` to make retries safe: a repeated request with the same key and body
/// returns the first response (with `Idempotency-Replayed: true`) instead of a second contact.
#[utoipa::path(
    post,
    path = "/api/v1/contacts",
    tag = "contacts",
    operation_id = "create_contact",
    request_body(content = NewContact, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; makes retries of this request safe for 24 h")),
    responses(
        (status = 201, description = "The contact was created.", body = Contact,
            headers(
                ("Location" = String, description = "URL of the new contact"),
                ("ETag" = String, description = "Its version, for If-Match"),
                ("Idempotency-Replayed" = Option<String>, description = "`true` on a replayed response"),
            )),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewContact>,
) -> Result<Response> {
    let contact = state
        .customers
        .client()
        .create_contact(request(pb::CreateContactRequest::from(body), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let contact = Contact::try_from(contact).map_err(Error::internal)?;
    Ok(created(
        &format!("/api/v1/contacts/{}", contact.id),
        contact.version,
        &visible(&contact, &access, Resource::Contact),
    ))
}

/// List contacts, filtered and sorted, one page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    tag = "contacts",
    operation_id = "list_contacts",
    params(ListContactsParams),
    responses((status = 200, description = "One page of contacts.", body = ContactList)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    ApiQuery(params): ApiQuery<ListContactsParams>,
) -> Result<Response> {
    super::check_page_size(params.page_size)?;
    let params_include_total = params.include_total;
    let page = state
        .customers
        .client()
        .list_contacts(request(pb::ListContactsRequest::from(params), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let page = ContactList::try_from(page).map_err(Error::internal)?;
    let mut page = page;
    if params_include_total != Some(true) {
        page.total_size = None;
    }
    Ok(axum::Json(visible_list(&page, &access, Resource::Contact)).into_response())
}

/// Read one contact.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    operation_id = "get_contact",
    params(("id" = Uuid, Path, description = "The contact id")),
    responses((status = 200, description = "The contact.", body = Contact,
        headers(("ETag" = String, description = "Its version, for If-Match")))),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    let contact = fetch(&state, &access, id).await?;
    Ok(with_etag(
        StatusCode::OK,
        contact.version,
        &visible(&contact, &access, Resource::Contact),
    ))
}

async fn fetch(state: &AppState, access: &Access, id: uuid::Uuid) -> Result<Contact> {
    let contact = state
        .customers
        .client()
        .get_contact(request(
            pb::GetContactRequest { id: id.to_string() },
            access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    Contact::try_from(contact).map_err(Error::internal)
}

/// Change some fields of a contact.
///
/// Absent fields stay as they are; `null` clears an optional field. `If-Match` is required: the
/// ETag of the version being changed (412 if it is no longer current), or `*`.
#[utoipa::path(
    patch,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    operation_id = "update_contact",
    request_body(content = ContactPatch, content_type = "application/json"),
    params(("id" = Uuid, Path, description = "The contact id"), ("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"` or `W/\"3\"`), or `*`")),
    responses((status = 200, description = "The contact after the change.", body = Contact,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<ContactPatch>,
) -> Result<Response> {
    let expected_version = match if_match {
        IfMatch::Version(version) => version,
        // "Any version": the current one. Updates always name a version, so read it first.
        IfMatch::Any => fetch(&state, &access, id).await?.version,
    };
    let update = ContactUpdate {
        id,
        expected_version,
        patch,
    };
    let contact = state
        .customers
        .client()
        .update_contact(request(pb::UpdateContactRequest::from(update), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let contact = Contact::try_from(contact).map_err(Error::internal)?;
    Ok(with_etag(
        StatusCode::OK,
        contact.version,
        &visible(&contact, &access, Resource::Contact),
    ))
}

/// Delete a contact (soft: it disappears from reads and lists, its history stays).
///
/// `If-Match` is optional; when given, the delete only happens if the version still matches.
#[utoipa::path(
    delete,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    operation_id = "delete_contact",
    params(("id" = Uuid, Path, description = "The contact id"), ("If-Match" = Option<String>, Header, description = "When given: the ETag the record must still have, or `*`")),
    responses((status = 204, description = "The contact was deleted.")),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: Option<IfMatch>,
) -> Result<Response> {
    let expected_version = if_match.map_or(0, IfMatch::expected_version);
    state
        .customers
        .client()
        .delete_contact(request(
            pb::DeleteContactRequest {
                id: id.to_string(),
                expected_version,
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}

/// Export every contact you may export, as NDJSON or CSV.
///
/// Takes the filters and sort of the list (no paging) and streams all matching contacts in your
/// export scope, with your field rules applied (hidden fields are left out, masked ones masked).
/// A `200` body that ends abruptly was cut off by a failure: retry the export.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/export",
    tag = "contacts",
    operation_id = "export_contacts",
    params(ExportContactsParams),
    responses((status = 200, description = "Every matching contact you may export.",
        content(("application/x-ndjson"), ("text/csv")))),
    security(("bearer" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    ApiQuery(params): ApiQuery<ExportContactsParams>,
) -> Result<Response> {
    let format = params.format.unwrap_or_default();
    let stream = state
        .customers
        .client()
        .export_contacts(request(pb::ExportContactsRequest::from(params), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let pages = stream.map(|page| {
        page.map_err(Error::from_status)?
            .contacts
            .into_iter()
            .map(|r| Contact::try_from(r).map_err(Error::internal))
            .collect::<Result<Vec<_>>>()
    });
    Ok(export::respond(
        pages,
        &access,
        Resource::Contact,
        export::CONTACT_COLUMNS,
        format,
        "contacts",
    ))
}
