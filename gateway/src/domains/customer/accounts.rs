//! `/api/v1/accounts`: companies we sell to, served by the customer service's account calls.

use crm_access::{Access, Action, Resource};
use crm_proto::customer as pb;
use uuid::Uuid;

use super::convert::AccountUpdate;
use super::model::{
    Account, AccountList, AccountPatch, ExportAccountsParams, ListAccountsParams, NewAccount,
};
use crate::platform::error::Result;
use crate::platform::records::{RecordApi, RecordPages, done, export_pages};
use crate::upstream::customer::Client;
use crate::upstream::{reply, request};

/// The account routes (see [`crate::platform::records`]).
pub struct Accounts;

impl RecordApi for Accounts {
    const RESOURCE: Resource = Resource::ACCOUNT;
    const COLLECTION: &'static str = "accounts";
    const ONE: &'static str = "account";
    const A_ONE: &'static str = "an account";
    // What a write returns is shown with the READ field rules; moves need ASSIGN.
    const CREATE_ALSO: &'static [(Resource, Action)] = &[(Resource::ACCOUNT, Action::Read)];
    const UPDATE_ALSO: &'static [(Resource, Action)] = &[
        (Resource::ACCOUNT, Action::Read),
        (Resource::ACCOUNT, Action::Assign),
    ];
    const DELETE_ALSO: &'static [(Resource, Action)] = &[(Resource::ACCOUNT, Action::Read)];
    const EXPORT_COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "website",
        "industry",
        "phone",
        "email",
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
    type Record = Account;
    type New = NewAccount;
    type Patch = AccountPatch;
    type List = AccountList;
    type ListParams = ListAccountsParams;
    type ExportParams = ExportAccountsParams;

    async fn create(client: &Client, new: NewAccount, access: &Access) -> Result<Account> {
        let request = request(pb::CreateAccountRequest::from(new), access);
        reply(client.clone().create_account(request)).await
    }

    async fn list(
        client: &Client,
        params: ListAccountsParams,
        access: &Access,
    ) -> Result<AccountList> {
        let request = request(pb::ListAccountsRequest::from(params), access);
        reply(client.clone().list_accounts(request)).await
    }

    async fn get(client: &Client, id: Uuid, access: &Access) -> Result<Account> {
        let request = request(pb::GetAccountRequest { id: id.to_string() }, access);
        reply(client.clone().get_account(request)).await
    }

    async fn update(
        client: &Client,
        id: Uuid,
        expected_version: i64,
        patch: AccountPatch,
        access: &Access,
    ) -> Result<Account> {
        let update = AccountUpdate {
            id,
            expected_version,
            patch,
        };
        let request = request(pb::UpdateAccountRequest::from(update), access);
        reply(client.clone().update_account(request)).await
    }

    async fn delete(
        client: &Client,
        id: Uuid,
        expected_version: i64,
        access: &Access,
    ) -> Result<()> {
        let id = id.to_string();
        let request = request(
            pb::DeleteAccountRequest {
                id,
                expected_version,
            },
            access,
        );
        done(client.clone().delete_account(request)).await
    }

    async fn export(
        client: &Client,
        params: ExportAccountsParams,
        access: &Access,
    ) -> Result<RecordPages<Account>> {
        let request = request(pb::ExportAccountsRequest::from(params), access);
        export_pages(client.clone().export_accounts(request), |page| {
            page.accounts
        })
        .await
    }
}
