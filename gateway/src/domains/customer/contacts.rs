//! `/api/v1/contacts`: people, usually working at an account, served by the customer service's
//! contact calls.

use crm_access::{Access, Action, Resource};
use crm_proto::customer as pb;
use uuid::Uuid;

use super::convert::ContactUpdate;
use super::model::{
    Contact, ContactList, ContactPatch, ExportContactsParams, ListContactsParams, NewContact,
};
use crate::platform::error::Result;
use crate::platform::records::{RecordApi, RecordPages, done, export_pages};
use crate::upstream::customer::Client;
use crate::upstream::{reply, request};

/// The contact routes (see [`crate::platform::records`]).
pub struct Contacts;

impl RecordApi for Contacts {
    const RESOURCE: Resource = Resource::CONTACT;
    const COLLECTION: &'static str = "contacts";
    const ONE: &'static str = "contact";
    const A_ONE: &'static str = "a contact";
    // What a write returns is shown with the READ field rules; moves need ASSIGN; a contact's
    // account must be one the caller may read.
    const CREATE_ALSO: &'static [(Resource, Action)] = &[
        (Resource::CONTACT, Action::Read),
        (Resource::ACCOUNT, Action::Read),
    ];
    const UPDATE_ALSO: &'static [(Resource, Action)] = &[
        (Resource::CONTACT, Action::Read),
        (Resource::CONTACT, Action::Assign),
        (Resource::ACCOUNT, Action::Read),
    ];
    const DELETE_ALSO: &'static [(Resource, Action)] = &[(Resource::CONTACT, Action::Read)];
    const EXPORT_COLUMNS: &'static [&'static str] = &[
        "id",
        "account_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "title",
        "owner_id",
        "department_id",
        "tags",
        "lifecycle_status",
        "grade",
        "version",
        "created_at",
        "updated_at",
    ];

    type Upstream = Client;
    type Record = Contact;
    type New = NewContact;
    type Patch = ContactPatch;
    type List = ContactList;
    type ListParams = ListContactsParams;
    type ExportParams = ExportContactsParams;

    async fn create(client: &Client, new: NewContact, access: &Access) -> Result<Contact> {
        let request = request(pb::CreateContactRequest::from(new), access);
        reply(client.clone().create_contact(request)).await
    }

    async fn list(
        client: &Client,
        params: ListContactsParams,
        access: &Access,
    ) -> Result<ContactList> {
        let request = request(pb::ListContactsRequest::from(params), access);
        reply(client.clone().list_contacts(request)).await
    }

    async fn get(client: &Client, id: Uuid, access: &Access) -> Result<Contact> {
        let request = request(pb::GetContactRequest { id: id.to_string() }, access);
        reply(client.clone().get_contact(request)).await
    }

    async fn update(
        client: &Client,
        id: Uuid,
        expected_version: i64,
        patch: ContactPatch,
        access: &Access,
    ) -> Result<Contact> {
        let update = ContactUpdate {
            id,
            expected_version,
            patch,
        };
        let request = request(pb::UpdateContactRequest::from(update), access);
        reply(client.clone().update_contact(request)).await
    }

    async fn delete(
        client: &Client,
        id: Uuid,
        expected_version: i64,
        access: &Access,
    ) -> Result<()> {
        let id = id.to_string();
        let request = request(
            pb::DeleteContactRequest {
                id,
                expected_version,
            },
            access,
        );
        done(client.clone().delete_contact(request)).await
    }

    async fn export(
        client: &Client,
        params: ExportContactsParams,
        access: &Access,
    ) -> Result<RecordPages<Contact>> {
        let request = request(pb::ExportContactsRequest::from(params), access);
        export_pages(client.clone().export_contacts(request), |page| {
            page.contacts
        })
        .await
    }
}
