//! The gRPC edge: `crm.customer.v1.CustomerService`. Converts wire types into validated domain
//! values (all violations of a request reported at once) and domain results back.

use std::pin::Pin;

use crm_access::{Access, Action, Resource};
use crm_proto::customer as pb;
use futures::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{
    self, Account, AccountPatch, Contact, ContactPatch, Grade, LifecycleStatus, NewAccount,
    NewContact, Violations,
};
use crate::list::{ListQuery, RawListQuery};
use crate::service::Customers;
use crm_record::page::{Page, Sort};

/// Rows per message of an export stream.
pub const EXPORT_PAGE_SIZE: i64 = 500;

pub struct CustomerApi {
    customers: Customers,
}

impl CustomerApi {
    pub fn new(customers: Customers) -> Self {
        Self { customers }
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

impl From<LifecycleStatus> for pb::LifecycleStatus {
    fn from(s: LifecycleStatus) -> Self {
        match s {
            LifecycleStatus::Prospect => pb::LifecycleStatus::Prospect,
            LifecycleStatus::Active => pb::LifecycleStatus::Active,
            LifecycleStatus::Inactive => pb::LifecycleStatus::Inactive,
            LifecycleStatus::Churned => pb::LifecycleStatus::Churned,
        }
    }
}

fn grade_pb(g: Option<Grade>) -> pb::Grade {
    match g {
        None => pb::Grade::Unspecified,
        Some(Grade::A) => pb::Grade::A,
        Some(Grade::B) => pb::Grade::B,
        Some(Grade::C) => pb::Grade::C,
        Some(Grade::D) => pb::Grade::D,
    }
}

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
            version: a.version,
            created_at: Some(timestamp(a.created_at)),
            updated_at: Some(timestamp(a.updated_at)),
        }
    }
}

impl From<Contact> for pb::Contact {
    fn from(c: Contact) -> Self {
        pb::Contact {
            id: c.id.to_string(),
            account_id: c.account_id.to_string(),
            first_name: c.first_name,
            last_name: c.last_name.unwrap_or_default(),
            email: c.email.unwrap_or_default(),
            phone: c.phone.unwrap_or_default(),
            title: c.title.unwrap_or_default(),
            owner_id: c.owner_id.to_string(),
            department_id: c.department_id.map(|d| d.to_string()).unwrap_or_default(),
            tags: c.tags,
            lifecycle_status: pb::LifecycleStatus::from(c.lifecycle_status) as i32,
            grade: grade_pb(c.grade) as i32,
            version: c.version,
            created_at: Some(timestamp(c.created_at)),
            updated_at: Some(timestamp(c.updated_at)),
        }
    }
}

impl Violations {
    /// `None` for UNSPECIFIED (the caller's default applies); unknown numbers are violations.
    fn status(&mut self, field: &str, raw: i32) -> Option<LifecycleStatus> {
        match pb::LifecycleStatus::try_from(raw) {
            Ok(pb::LifecycleStatus::Unspecified) => None,
            Ok(pb::LifecycleStatus::Prospect) => Some(LifecycleStatus::Prospect),
            Ok(pb::LifecycleStatus::Active) => Some(LifecycleStatus::Active),
            Ok(pb::LifecycleStatus::Inactive) => Some(LifecycleStatus::Inactive),
            Ok(pb::LifecycleStatus::Churned) => Some(LifecycleStatus::Churned),
            Err(_) => {
                self.add(field, "unknown lifecycle status");
                None
            }
        }
    }

    /// A status in a patch: it can change, but not be cleared.
    fn status_change(&mut self, raw: i32) -> Option<LifecycleStatus> {
        let parsed = self.status("lifecycle_status", raw);
        if parsed.is_none() && raw == 0 {
            self.add("lifecycle_status", "cannot be cleared");
        }
        parsed
    }

    fn grade(&mut self, field: &str, raw: i32) -> Option<Grade> {
        match pb::Grade::try_from(raw) {
            Ok(pb::Grade::Unspecified) => None,
            Ok(pb::Grade::A) => Some(Grade::A),
            Ok(pb::Grade::B) => Some(Grade::B),
            Ok(pb::Grade::C) => Some(Grade::C),
            Ok(pb::Grade::D) => Some(Grade::D),
            Err(_) => {
                self.add(field, "unknown grade");
                None
            }
        }
    }

    /// An explicit owner, else the caller.
    fn owner(&mut self, given: &str, caller: Uuid) -> Uuid {
        if !given.trim().is_empty() {
            return self.uuid("owner_id", given).unwrap_or_default();
        }
        caller
    }

    /// An optional id: empty is none.
    fn optional_id(&mut self, field: &str, given: &str) -> Option<Uuid> {
        (!given.trim().is_empty())
            .then(|| self.uuid(field, given))
            .flatten()
    }

    fn id(&mut self, raw: &str) -> Uuid {
        self.uuid("id", raw).unwrap_or_default()
    }

    fn version(&mut self, field: &str, raw: i64) -> i64 {
        if raw < 1 {
            self.add(field, "must be the version you read (1 or more)");
        }
        raw
    }
}

/// The user the call acts for, as the verified call token bound it (ADR 0012); a service
/// calling as itself gets no records.
fn access<T>(request: &Request<T>) -> Result<Access, Status> {
    Ok(crm_identity::user_access(request)?)
}

type PageStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// An export: pages of [`EXPORT_PAGE_SIZE`] fetched one at a time, as the client reads them
/// (a slow reader holds no rows in memory and no connection between pages).
fn export<R, T, F, Fut>(mut query: ListQuery, fetch: F, wrap: fn(Vec<R>) -> T) -> PageStream<T>
where
    R: Send + 'static,
    T: Send + 'static,
    F: Fn(ListQuery) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = crate::error::Result<Page<R>>> + Send,
{
    query.keyset.page_size = EXPORT_PAGE_SIZE;
    Box::pin(futures::stream::unfold(Some(query), move |state| {
        let fetch = fetch.clone();
        async move {
            let query = state?;
            match fetch(query.clone()).await {
                Ok(page) => {
                    let next = page.last.as_ref().map(|last| {
                        let mut query = query;
                        query.keyset.advance(last);
                        query
                    });
                    Some((Ok(wrap(page.items)), next))
                }
                Err(err) => Some((Err(err.into()), None)),
            }
        }
    }))
}

fn sort(raw: i32, v: &mut Violations) -> Sort {
    match pb::SortField::try_from(raw) {
        Ok(pb::SortField::Unspecified | pb::SortField::CreatedAt) => Sort::CreatedAt,
        Ok(pb::SortField::UpdatedAt) => Sort::UpdatedAt,
        Ok(pb::SortField::Name) => Sort::Name,
        Err(_) => {
            v.add("sort", "unknown sort field");
            Sort::CreatedAt
        }
    }
}

/// Optional text in a patch: `None` unchanged, `Some(None)` cleared, `Some(Some(v))` set.
fn patch_text(
    v: &mut Violations,
    raw: Option<String>,
    check: impl FnOnce(&mut Violations, &str) -> Option<String>,
) -> Option<Option<String>> {
    raw.map(|s| check(v, &s))
}

fn parse_id(raw: &str) -> Result<Uuid, Status> {
    let mut v = Violations::default();
    let id = v.id(raw);
    v.into_result()?;
    Ok(id)
}

type GrpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::customer_service_server::CustomerService for CustomerApi {
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> GrpcResult<pb::Account> {
        let access = access(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let new = NewAccount {
            name: v.required("name", &r.name, domain::MAX_NAME),
            website: v.website("website", &r.website),
            industry: v.optional("industry", &r.industry, domain::MAX_SHORT),
            phone: v.phone("phone", &r.phone),
            email: v.email("email", &r.email),
            owner_id: v.owner(&r.owner_id, access.user_id),
            department_id: v.optional_id("department_id", &r.department_id),
            tags: v.tags("tags", &r.tags),
            lifecycle_status: v
                .status("lifecycle_status", r.lifecycle_status)
                .unwrap_or(LifecycleStatus::Prospect),
            grade: v.grade("grade", r.grade),
        };
        v.into_result()?;
        Ok(Response::new(
            self.customers.create_account(&access, new).await?.into(),
        ))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> GrpcResult<pb::Account> {
        let access = access(&request)?;
        let id = parse_id(&request.get_ref().id)?;
        Ok(Response::new(
            self.customers.get_account(&access, id).await?.into(),
        ))
    }

    async fn update_account(
        &self,
        request: Request<pb::UpdateAccountRequest>,
    ) -> GrpcResult<pb::Account> {
        let access = access(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let id = v.id(&r.id);
        let expected = v.version("expected_version", r.expected_version);
        let patch = AccountPatch {
            name: r.name.map(|n| v.required("name", &n, domain::MAX_NAME)),
            website: patch_text(&mut v, r.website, |v, s| v.website("website", s)),
            industry: patch_text(&mut v, r.industry, |v, s| {
                v.optional("industry", s, domain::MAX_SHORT)
            }),
            phone: patch_text(&mut v, r.phone, |v, s| v.phone("phone", s)),
            email: patch_text(&mut v, r.email, |v, s| v.email("email", s)),
            owner_id: r
                .owner_id
                .map(|o| v.uuid("owner_id", &o).unwrap_or_default()),
            department_id: r.department_id.map(|d| v.optional_id("department_id", &d)),
            tags: r.tags.map(|t| v.tags("tags", &t.values)),
            lifecycle_status: r.lifecycle_status.and_then(|s| v.status_change(s)),
            grade: r.grade.map(|g| v.grade("grade", g)),
        };
        v.into_result()?;
        Ok(Response::new(
            self.customers
                .update_account(&access, id, expected, patch)
                .await?
                .into(),
        ))
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> GrpcResult<pb::DeleteAccountResponse> {
        let access = access(&request)?;
        let r = request.into_inner();
        let id = parse_id(&r.id)?;
        let expected = (r.expected_version != 0).then_some(r.expected_version);
        let version = self.customers.delete_account(&access, id, expected).await?;
        Ok(Response::new(pb::DeleteAccountResponse {
            id: id.to_string(),
            version,
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> GrpcResult<pb::ListAccountsResponse> {
        let access = access(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let status = v.status("lifecycle_status", r.lifecycle_status);
        let sort = sort(r.sort, &mut v);
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
        })?;
        let page = self
            .customers
            .list_accounts(&access, Action::Read, &query, r.include_total)
            .await?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
            total_size: page.total.unwrap_or_default(),
        }))
    }

    type ExportAccountsStream = PageStream<pb::ListAccountsResponse>;

    async fn export_accounts(
        &self,
        request: Request<pb::ExportAccountsRequest>,
    ) -> GrpcResult<Self::ExportAccountsStream> {
        let access = access(&request)?;
        access.scope(Resource::Account, Action::Export)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let status = v.status("lifecycle_status", r.lifecycle_status);
        let sort = sort(r.sort, &mut v);
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
        })?;
        let customers = self.customers.clone();
        Ok(Response::new(export(
            query,
            move |q| {
                let (customers, access) = (customers.clone(), access.clone());
                async move {
                    customers
                        .list_accounts(&access, Action::Export, &q, false)
                        .await
                }
            },
            |items| pb::ListAccountsResponse {
                accounts: items.into_iter().map(Into::into).collect(),
                ..Default::default()
            },
        )))
    }

    async fn create_contact(
        &self,
        request: Request<pb::CreateContactRequest>,
    ) -> GrpcResult<pb::Contact> {
        let access = access(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let new = NewContact {
            account_id: v.uuid("account_id", &r.account_id).unwrap_or_default(),
            first_name: v.required("first_name", &r.first_name, domain::MAX_SHORT),
            last_name: v.optional("last_name", &r.last_name, domain::MAX_SHORT),
            email: v.email("email", &r.email),
            phone: v.phone("phone", &r.phone),
            title: v.optional("title", &r.title, domain::MAX_SHORT),
            owner_id: v.owner(&r.owner_id, access.user_id),
            department_id: v.optional_id("department_id", &r.department_id),
            tags: v.tags("tags", &r.tags),
            lifecycle_status: v
                .status("lifecycle_status", r.lifecycle_status)
                .unwrap_or(LifecycleStatus::Prospect),
            grade: v.grade("grade", r.grade),
        };
        v.into_result()?;
        Ok(Response::new(
            self.customers.create_contact(&access, new).await?.into(),
        ))
    }

    async fn get_contact(
        &self,
        request: Request<pb::GetContactRequest>,
    ) -> GrpcResult<pb::Contact> {
        let access = access(&request)?;
        let id = parse_id(&request.get_ref().id)?;
        Ok(Response::new(
            self.customers.get_contact(&access, id).await?.into(),
        ))
    }

    async fn update_contact(
        &self,
        request: Request<pb::UpdateContactRequest>,
    ) -> GrpcResult<pb::Contact> {
        let access = access(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let id = v.id(&r.id);
        let expected = v.version("expected_version", r.expected_version);
        let patch = ContactPatch {
            account_id: r
                .account_id
                .map(|a| v.uuid("account_id", &a).unwrap_or_default()),
            first_name: r
                .first_name
                .map(|n| v.required("first_name", &n, domain::MAX_SHORT)),
            last_name: patch_text(&mut v, r.last_name, |v, s| {
                v.optional("last_name", s, domain::MAX_SHORT)
            }),
            email: patch_text(&mut v, r.email, |v, s| v.email("email", s)),
            phone: patch_text(&mut v, r.phone, |v, s| v.phone("phone", s)),
            title: patch_text(&mut v, r.title, |v, s| {
                v.optional("title", s, domain::MAX_SHORT)
            }),
            owner_id: r
                .owner_id
                .map(|o| v.uuid("owner_id", &o).unwrap_or_default()),
            department_id: r.department_id.map(|d| v.optional_id("department_id", &d)),
            tags: r.tags.map(|t| v.tags("tags", &t.values)),
            lifecycle_status: r.lifecycle_status.and_then(|s| v.status_change(s)),
            grade: r.grade.map(|g| v.grade("grade", g)),
        };
        v.into_result()?;
        Ok(Response::new(
            self.customers
                .update_contact(&access, id, expected, patch)
                .await?
                .into(),
        ))
    }

    async fn delete_contact(
        &self,
        request: Request<pb::DeleteContactRequest>,
    ) -> GrpcResult<pb::DeleteContactResponse> {
        let access = access(&request)?;
        let r = request.into_inner();
        let id = parse_id(&r.id)?;
        let expected = (r.expected_version != 0).then_some(r.expected_version);
        let version = self.customers.delete_contact(&access, id, expected).await?;
        Ok(Response::new(pb::DeleteContactResponse {
            id: id.to_string(),
            version,
        }))
    }

    async fn list_contacts(
        &self,
        request: Request<pb::ListContactsRequest>,
    ) -> GrpcResult<pb::ListContactsResponse> {
        let access = access(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let status = v.status("lifecycle_status", r.lifecycle_status);
        let sort = sort(r.sort, &mut v);
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
            account_id: &r.account_id,
        })?;
        let page = self
            .customers
            .list_contacts(&access, Action::Read, &query, r.include_total)
            .await?;
        Ok(Response::new(pb::ListContactsResponse {
            contacts: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
            total_size: page.total.unwrap_or_default(),
        }))
    }

    type ExportContactsStream = PageStream<pb::ListContactsResponse>;

    async fn export_contacts(
        &self,
        request: Request<pb::ExportContactsRequest>,
    ) -> GrpcResult<Self::ExportContactsStream> {
        let access = access(&request)?;
        access.scope(Resource::Contact, Action::Export)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let status = v.status("lifecycle_status", r.lifecycle_status);
        let sort = sort(r.sort, &mut v);
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
            account_id: &r.account_id,
        })?;
        let customers = self.customers.clone();
        Ok(Response::new(export(
            query,
            move |q| {
                let (customers, access) = (customers.clone(), access.clone());
                async move {
                    customers
                        .list_contacts(&access, Action::Export, &q, false)
                        .await
                }
            },
            |items| pb::ListContactsResponse {
                contacts: items.into_iter().map(Into::into).collect(),
                ..Default::default()
            },
        )))
    }
}
