//! The gRPC edge of contacts: the contact RPCs of `crm.customer.v1.CustomerService`, as
//! functions the service's one implementation ([`crate::grpc::CustomerApi`]) delegates to.
//! Converts wire types into validated domain values (all violations of a request reported at
//! once), calls [`Contacts`] and converts the answer back.

use crm_access::{Action, Resource};
use crm_proto::customer as pb;
use tonic::{Request, Response};

use super::domain::{Contact, ContactPatch, NewContact};
use super::service::Contacts;
use crate::record::domain::LifecycleStatus;
use crate::record::list::{ListQuery, RawListQuery};
use crate::validation::{MAX_SHORT, Violations};
use crate::wire::{
    self, GrpcResult, PageStream, access, grade, grade_pb, parse_id, patch_text, sort, status,
    status_change, timestamp,
};

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
            custom_json: wire::custom_out(&c.custom),
            version: c.version,
            created_at: Some(timestamp(c.created_at)),
            updated_at: Some(timestamp(c.updated_at)),
        }
    }
}

pub async fn create(
    contacts: &Contacts,
    request: Request<pb::CreateContactRequest>,
) -> GrpcResult<pb::Contact> {
    let access = access(&request)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let new = NewContact {
        account_id: v.uuid("account_id", &r.account_id).unwrap_or_default(),
        first_name: v.required("first_name", &r.first_name, MAX_SHORT),
        last_name: v.optional("last_name", &r.last_name, MAX_SHORT),
        email: v.email("email", &r.email),
        phone: v.phone("phone", &r.phone),
        title: v.optional("title", &r.title, MAX_SHORT),
        owner_id: v.owner(&r.owner_id, access.user_id),
        department_id: v.optional_id("department_id", &r.department_id),
        tags: v.tags("tags", &r.tags),
        lifecycle_status: status(&mut v, "lifecycle_status", r.lifecycle_status)
            .unwrap_or(LifecycleStatus::Prospect),
        grade: grade(&mut v, "grade", r.grade),
        custom: wire::custom_in(&mut v, &r.custom_json),
    };
    v.into_result()?;
    Ok(Response::new(contacts.create(&access, new).await?.into()))
}

pub async fn get(
    contacts: &Contacts,
    request: Request<pb::GetContactRequest>,
) -> GrpcResult<pb::Contact> {
    let access = access(&request)?;
    let id = parse_id(&request.get_ref().id)?;
    Ok(Response::new(contacts.get(&access, id).await?.into()))
}

pub async fn update(
    contacts: &Contacts,
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
            .map(|n| v.required("first_name", &n, MAX_SHORT)),
        last_name: patch_text(&mut v, r.last_name, |v, s| {
            v.optional("last_name", s, MAX_SHORT)
        }),
        email: patch_text(&mut v, r.email, |v, s| v.email("email", s)),
        phone: patch_text(&mut v, r.phone, |v, s| v.phone("phone", s)),
        title: patch_text(&mut v, r.title, |v, s| v.optional("title", s, MAX_SHORT)),
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
        contacts.update(&access, id, expected, patch).await?.into(),
    ))
}

pub async fn delete(
    contacts: &Contacts,
    request: Request<pb::DeleteContactRequest>,
) -> GrpcResult<pb::DeleteContactResponse> {
    let access = access(&request)?;
    let r = request.into_inner();
    let id = parse_id(&r.id)?;
    let expected = (r.expected_version != 0).then_some(r.expected_version);
    let version = contacts.delete(&access, id, expected).await?;
    Ok(Response::new(pb::DeleteContactResponse {
        id: id.to_string(),
        version,
    }))
}

pub async fn list(
    contacts: &Contacts,
    request: Request<pb::ListContactsRequest>,
) -> GrpcResult<pb::ListContactsResponse> {
    let access = access(&request)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let status = status(&mut v, "lifecycle_status", r.lifecycle_status);
    let sort = sort(r.sort, &mut v, &super::store::CONTACT_TABLE);
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
        filter: &r.filter,
    })?;
    let page = contacts
        .list(&access, Action::Read, &query, r.include_total)
        .await?;
    Ok(Response::new(pb::ListContactsResponse {
        contacts: page.items.into_iter().map(Into::into).collect(),
        next_page_token: page.next_page_token.unwrap_or_default(),
        total_size: page.total.unwrap_or_default(),
    }))
}

pub async fn export(
    contacts: &Contacts,
    request: Request<pb::ExportContactsRequest>,
) -> GrpcResult<PageStream<pb::ListContactsResponse>> {
    let access = access(&request)?;
    access.scope(Resource::CONTACT, Action::Export)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let status = status(&mut v, "lifecycle_status", r.lifecycle_status);
    let sort = sort(r.sort, &mut v, &super::store::CONTACT_TABLE);
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
        filter: &r.filter,
    })?;
    let contacts = contacts.clone();
    Ok(Response::new(wire::export(
        query,
        move |q| {
            let (contacts, access) = (contacts.clone(), access.clone());
            async move { contacts.list(&access, Action::Export, &q, false).await }
        },
        |items| pb::ListContactsResponse {
            contacts: items.into_iter().map(Into::into).collect(),
            ..Default::default()
        },
    )))
}
