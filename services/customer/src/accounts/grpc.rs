//! The gRPC edge of accounts: the account RPCs of `crm.customer.v1.CustomerService`, as
//! functions the service's one implementation ([`crate::grpc::CustomerApi`]) delegates to.
//! Converts wire types into validated domain values (all violations of a request reported at
//! once), calls [`Accounts`] and converts the answer back.

use crm_access::{Action, Resource};
use crm_proto::customer as pb;
use tonic::{Request, Response};

use super::domain::{Account, AccountPatch, NewAccount};
use super::service::Accounts;
use crate::record::domain::LifecycleStatus;
use crate::record::list::{ListQuery, RawListQuery};
use crate::validation::{MAX_NAME, MAX_SHORT, Violations};
use crate::wire::{
    self, GrpcResult, PageStream, access, grade, grade_pb, parse_id, patch_text, sort, status,
    status_change, timestamp,
};

impl From<Account> for pb::Account {
    fn from(a: Account) -> Self {
        pb::Account {
            id: a.id.to_string(),
            name: a.name,
            website: a.website.unwrap_or_default(),
            industry: a.industry.unwrap_or_default(),
            phone: a.phone.unwrap_or_default(),
            email: a.email.unwrap_or_default(),
            owner_id: a.owner_id.to_string(),
            department_id: a.department_id.map(|d| d.to_string()).unwrap_or_default(),
            tags: a.tags,
            lifecycle_status: pb::LifecycleStatus::from(a.lifecycle_status) as i32,
            grade: grade_pb(a.grade) as i32,
            custom_json: wire::custom_out(&a.custom),
            version: a.version,
            created_at: Some(timestamp(a.created_at)),
            updated_at: Some(timestamp(a.updated_at)),
        }
    }
}

pub async fn create(
    accounts: &Accounts,
    request: Request<pb::CreateAccountRequest>,
) -> GrpcResult<pb::Account> {
    let access = access(&request)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let new = NewAccount {
        name: v.required("name", &r.name, MAX_NAME),
        website: v.website("website", &r.website),
        industry: v.optional("industry", &r.industry, MAX_SHORT),
        phone: v.phone("phone", &r.phone),
        email: v.email("email", &r.email),
        owner_id: v.owner(&r.owner_id, access.user_id),
        department_id: v.optional_id("department_id", &r.department_id),
        tags: v.tags("tags", &r.tags),
        lifecycle_status: status(&mut v, "lifecycle_status", r.lifecycle_status)
            .unwrap_or(LifecycleStatus::Prospect),
        grade: grade(&mut v, "grade", r.grade),
        custom: wire::custom_in(&mut v, &r.custom_json),
    };
    v.into_result()?;
    Ok(Response::new(accounts.create(&access, new).await?.into()))
}

pub async fn get(
    accounts: &Accounts,
    request: Request<pb::GetAccountRequest>,
) -> GrpcResult<pb::Account> {
    let access = access(&request)?;
    let id = parse_id(&request.get_ref().id)?;
    Ok(Response::new(accounts.get(&access, id).await?.into()))
}

pub async fn update(
    accounts: &Accounts,
    request: Request<pb::UpdateAccountRequest>,
) -> GrpcResult<pb::Account> {
    let access = access(&request)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let id = v.id(&r.id);
    let expected = v.version("expected_version", r.expected_version);
    let patch = AccountPatch {
        name: r.name.map(|n| v.required("name", &n, MAX_NAME)),
        website: patch_text(&mut v, r.website, |v, s| v.website("website", s)),
        industry: patch_text(&mut v, r.industry, |v, s| {
            v.optional("industry", s, MAX_SHORT)
        }),
        phone: patch_text(&mut v, r.phone, |v, s| v.phone("phone", s)),
        email: patch_text(&mut v, r.email, |v, s| v.email("email", s)),
        owner_id: r
            .owner_id
            .map(|o| v.uuid("owner_id", &o).unwrap_or_default()),
        department_id: r.department_id.map(|d| v.optional_id("department_id", &d)),
        tags: r.tags.map(|t| v.tags("tags", &t.values)),
        lifecycle_status: r.lifecycle_status.and_then(|s| status_change(&mut v, s)),
        grade: r.grade.map(|g| grade(&mut v, "grade", g)),
        custom: wire::custom_in(&mut v, &r.custom_json),
    };
    v.into_result()?;
    Ok(Response::new(
        accounts.update(&access, id, expected, patch).await?.into(),
    ))
}

pub async fn delete(
    accounts: &Accounts,
    request: Request<pb::DeleteAccountRequest>,
) -> GrpcResult<pb::DeleteAccountResponse> {
    let access = access(&request)?;
    let r = request.into_inner();
    let id = parse_id(&r.id)?;
    let expected = (r.expected_version != 0).then_some(r.expected_version);
    let version = accounts.delete(&access, id, expected).await?;
    Ok(Response::new(pb::DeleteAccountResponse {
        id: id.to_string(),
        version,
    }))
}

pub async fn list(
    accounts: &Accounts,
    request: Request<pb::ListAccountsRequest>,
) -> GrpcResult<pb::ListAccountsResponse> {
    let access = access(&request)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let status = status(&mut v, "lifecycle_status", r.lifecycle_status);
    let sort = sort(r.sort, &mut v, &crate::accounts::store::ACCOUNT_TABLE);
    v.into_result()?;
    let query = ListQuery::parse(RawListQuery {
        page_size: r.page_size,
        page_token: &r.page_token,
        owner_id: &r.owner_id,
        tag: &r.tag,
        status,
        text: &r.query,
        sort,
        descending: r.descending,
        account_id: "",
        filter: &r.filter,
    })?;
    let page = accounts
        .list(&access, Action::Read, &query, r.include_total)
        .await?;
    Ok(Response::new(pb::ListAccountsResponse {
        accounts: page.items.into_iter().map(Into::into).collect(),
        next_page_token: page.next_page_token.unwrap_or_default(),
        total_size: page.total.unwrap_or_default(),
    }))
}

pub async fn export(
    accounts: &Accounts,
    request: Request<pb::ExportAccountsRequest>,
) -> GrpcResult<PageStream<pb::ListAccountsResponse>> {
    let access = access(&request)?;
    access.scope(Resource::ACCOUNT, Action::Export)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let status = status(&mut v, "lifecycle_status", r.lifecycle_status);
    let sort = sort(r.sort, &mut v, &crate::accounts::store::ACCOUNT_TABLE);
    v.into_result()?;
    let query = ListQuery::parse(RawListQuery {
        page_size: 0,
        page_token: "",
        owner_id: &r.owner_id,
        tag: &r.tag,
        status,
        text: &r.query,
        sort,
        descending: r.descending,
        account_id: "",
        filter: &r.filter,
    })?;
    let accounts = accounts.clone();
    Ok(Response::new(wire::export(
        query,
        move |q| {
            let (accounts, access) = (accounts.clone(), access.clone());
            async move { accounts.list(&access, Action::Export, &q, false).await }
        },
        |items| pb::ListAccountsResponse {
            accounts: items.into_iter().map(Into::into).collect(),
            ..Default::default()
        },
    )))
}
