//! `/api/v1/accounts`: one handler per `CustomerService` account call.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_proto::customer as pb;
use futures::StreamExt;

use super::{created, export, no_content, visible, visible_list, with_etag};
use crate::convert::AccountUpdate;
use crate::customer::request;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiQuery, IdPath, IfMatch};
use crate::model::{
    Account, AccountList, AccountPatch, ExportAccountsParams, ListAccountsParams, NewAccount,
};
use crate::startup::AppState;
use crm_access::{Access, Resource};

/// Create an account.
///
/// Send `Idempotency-Key` to make retries safe: a repeated request with the same key and body
/// returns the first response (with `Idempotency-Replayed: true`) instead of a second account.
#[utoipa::path(
    post,
    path = "/api/v1/accounts",
    tag = "accounts",
    operation_id = "create_account",
    request_body(content = NewAccount, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; makes retries of this request safe for 24 h")),
    responses(
        (status = 201, description = "The account was created.", body = Account,
            headers(
                ("Location" = String, description = "URL of the new account"),
                ("ETag" = String, description = "Its version, for If-Match"),
                ("Idempotency-Replayed" = Option<String>, description = "`true` on a replayed response"),
            )),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<NewAccount>,
) -> Result<Response> {
    let account = state
        .customers
        .client()
        .create_account(request(pb::CreateAccountRequest::from(body), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let account = Account::try_from(account).map_err(Error::internal)?;
    Ok(created(
        &format!("/api/v1/accounts/{}", account.id),
        account.version,
        &visible(&account, &access, Resource::Account),
    ))
}

/// List accounts, filtered and sorted, one page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    tag = "accounts",
    operation_id = "list_accounts",
    params(ListAccountsParams),
    responses((status = 200, description = "One page of accounts.", body = AccountList)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    ApiQuery(params): ApiQuery<ListAccountsParams>,
) -> Result<Response> {
    super::check_page_size(params.page_size)?;
    let params_include_total = params.include_total;
    let page = state
        .customers
        .client()
        .list_accounts(request(pb::ListAccountsRequest::from(params), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let page = AccountList::try_from(page).map_err(Error::internal)?;
    let mut page = page;
    if params_include_total != Some(true) {
        page.total_size = None;
    }
    Ok(axum::Json(visible_list(&page, &access, Resource::Account)).into_response())
}

/// Read one account.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{id}",
    tag = "accounts",
    operation_id = "get_account",
    params(("id" = Uuid, Path, description = "The account id")),
    responses((status = 200, description = "The account.", body = Account,
        headers(("ETag" = String, description = "Its version, for If-Match")))),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    let account = fetch(&state, &access, id).await?;
    Ok(with_etag(
        StatusCode::OK,
        account.version,
        &visible(&account, &access, Resource::Account),
    ))
}

async fn fetch(state: &AppState, access: &Access, id: uuid::Uuid) -> Result<Account> {
    let account = state
        .customers
        .client()
        .get_account(request(
            pb::GetAccountRequest { id: id.to_string() },
            access,
        ))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    Account::try_from(account).map_err(Error::internal)
}

/// Change some fields of an account.
///
/// Absent fields stay as they are; `null` clears an optional field. `If-Match` is required: the
/// ETag of the version being changed (412 if it is no longer current), or `*`.
#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{id}",
    tag = "accounts",
    operation_id = "update_account",
    request_body(content = AccountPatch, content_type = "application/json"),
    params(("id" = Uuid, Path, description = "The account id"), ("If-Match" = String, Header, description = "ETag of the version being changed (`\"3\"` or `W/\"3\"`), or `*`")),
    responses((status = 200, description = "The account after the change.", body = Account,
        headers(("ETag" = String, description = "Its new version")))),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<AccountPatch>,
) -> Result<Response> {
    let expected_version = match if_match {
        IfMatch::Version(version) => version,
        // "Any version": the current one. Updates always name a version, so read it first.
        IfMatch::Any => fetch(&state, &access, id).await?.version,
    };
    let update = AccountUpdate {
        id,
        expected_version,
        patch,
    };
    let account = state
        .customers
        .client()
        .update_account(request(pb::UpdateAccountRequest::from(update), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let account = Account::try_from(account).map_err(Error::internal)?;
    Ok(with_etag(
        StatusCode::OK,
        account.version,
        &visible(&account, &access, Resource::Account),
    ))
}

/// Delete an account (soft: it disappears from reads and lists, its history stays).
///
/// `If-Match` is optional; when given, the delete only happens if the version still matches.
#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{id}",
    tag = "accounts",
    operation_id = "delete_account",
    params(("id" = Uuid, Path, description = "The account id"), ("If-Match" = Option<String>, Header, description = "When given: the ETag the record must still have, or `*`")),
    responses((status = 204, description = "The account was deleted.")),
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
        .delete_account(request(
            pb::DeleteAccountRequest {
                id: id.to_string(),
                expected_version,
            },
            &access,
        ))
        .await
        .map_err(Error::from_status)?;
    Ok(no_content())
}

/// Export every account you may export, as NDJSON or CSV.
///
/// Takes the filters and sort of the list (no paging) and streams all matching accounts in your
/// export scope, with your field rules applied (hidden fields are left out, masked ones masked).
/// A `200` body that ends abruptly was cut off by a failure: retry the export.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/export",
    tag = "accounts",
    operation_id = "export_accounts",
    params(ExportAccountsParams),
    responses((status = 200, description = "Every matching account you may export.",
        content(("application/x-ndjson"), ("text/csv")))),
    security(("bearer" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    ApiQuery(params): ApiQuery<ExportAccountsParams>,
) -> Result<Response> {
    let format = params.format.unwrap_or_default();
    let stream = state
        .customers
        .client()
        .export_accounts(request(pb::ExportAccountsRequest::from(params), &access))
        .await
        .map_err(Error::from_status)?
        .into_inner();
    let pages = stream.map(|page| {
        page.map_err(Error::from_status)?
            .accounts
            .into_iter()
            .map(|r| Account::try_from(r).map_err(Error::internal))
            .collect::<Result<Vec<_>>>()
    });
    Ok(export::respond(
        pages,
        &access,
        Resource::Account,
        export::ACCOUNT_COLUMNS,
        format,
        "accounts",
    ))
}
