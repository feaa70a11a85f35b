//! `/api/v1/follow-ups`: follow-ups (跟进记录) — calls, meetings, visits, notes and e-mails with
//! a customer — served by the customer service's follow-up calls. The resource is `follow_up`,
//! one the customer service declares to the registry (not one of the well-known ones).

use crm_access::{Access, Action, Resource};
use crm_proto::customer as pb;
use uuid::Uuid;

use super::convert::FollowUpUpdate;
use super::model::{
    ExportFollowUpsParams, FollowUp, FollowUpList, FollowUpPatch, ListFollowUpsParams, NewFollowUp,
};
use crate::platform::error::Result;
use crate::platform::records::{RecordApi, RecordPages, done, export_pages};
use crate::upstream::customer::Client;
use crate::upstream::{reply, request};

/// The follow-up routes (see [`crate::platform::records`]).
pub struct FollowUps;

/// Its grants and field rules: the name the customer service declares it under.
pub const FOLLOW_UP: Resource = Resource::named("follow_up");

impl RecordApi for FollowUps {
    const RESOURCE: Resource = FOLLOW_UP;
    const COLLECTION: &'static str = "follow-ups";
    const ONE: &'static str = "follow-up";
    const A_ONE: &'static str = "a follow-up";
    // What a write returns is shown with the READ field rules; moves need ASSIGN. A follow-up's
    // account and contact must be ones the caller may read: both are named on create, only the
    // contact can change afterwards (a follow-up stays with its account).
    const CREATE_ALSO: &'static [(Resource, Action)] = &[
        (FOLLOW_UP, Action::Read),
        (Resource::ACCOUNT, Action::Read),
        (Resource::CONTACT, Action::Read),
    ];
    const UPDATE_ALSO: &'static [(Resource, Action)] = &[
        (FOLLOW_UP, Action::Read),
        (FOLLOW_UP, Action::Assign),
        (Resource::CONTACT, Action::Read),
    ];
    const DELETE_ALSO: &'static [(Resource, Action)] = &[(FOLLOW_UP, Action::Read)];
    const EXPORT_COLUMNS: &'static [&'static str] = &[
        "id",
        "account_id",
        "contact_id",
        "kind",
        "subject",
        "content",
        "outcome",
        "occurred_at",
        "next_follow_up_at",
        "owner_id",
        "department_id",
        "version",
        "created_at",
        "updated_at",
    ];

    type Upstream = Client;
    type Record = FollowUp;
    type New = NewFollowUp;
    type Patch = FollowUpPatch;
    type List = FollowUpList;
    type ListParams = ListFollowUpsParams;
    type ExportParams = ExportFollowUpsParams;

    async fn create(client: &Client, new: NewFollowUp, access: &Access) -> Result<FollowUp> {
        let request = request(pb::CreateFollowUpRequest::from(new), access);
        reply(client.clone().create_follow_up(request)).await
    }

    async fn list(
        client: &Client,
        params: ListFollowUpsParams,
        access: &Access,
    ) -> Result<FollowUpList> {
        let request = request(pb::ListFollowUpsRequest::from(params), access);
        reply(client.clone().list_follow_ups(request)).await
    }

    async fn get(client: &Client, id: Uuid, access: &Access) -> Result<FollowUp> {
        let request = request(pb::GetFollowUpRequest { id: id.to_string() }, access);
        reply(client.clone().get_follow_up(request)).await
    }

    async fn update(
        client: &Client,
        id: Uuid,
        expected_version: i64,
        patch: FollowUpPatch,
        access: &Access,
    ) -> Result<FollowUp> {
        let update = FollowUpUpdate {
            id,
            expected_version,
            patch,
        };
        let request = request(pb::UpdateFollowUpRequest::from(update), access);
        reply(client.clone().update_follow_up(request)).await
    }

    async fn delete(
        client: &Client,
        id: Uuid,
        expected_version: i64,
        access: &Access,
    ) -> Result<()> {
        let id = id.to_string();
        let request = request(
            pb::DeleteFollowUpRequest {
                id,
                expected_version,
            },
            access,
        );
        done(client.clone().delete_follow_up(request)).await
    }

    async fn export(
        client: &Client,
        params: ExportFollowUpsParams,
        access: &Access,
    ) -> Result<RecordPages<FollowUp>> {
        let request = request(pb::ExportFollowUpsRequest::from(params), access);
        export_pages(client.clone().export_follow_ups(request), |page| {
            page.follow_ups
        })
        .await
    }
}
