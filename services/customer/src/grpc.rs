//! The gRPC service `crm.customer.v1.CustomerService`: one type ([`CustomerApi`]) implementing
//! the one generated trait, so the implementation stays in this one file. It holds no logic:
//! each RPC is handed to its aggregate's edge, [`crate::accounts::grpc`],
//! [`crate::contacts::grpc`] or [`crate::follow_ups::grpc`], which converts, calls the use case
//! and converts back.

use crm_proto::customer as pb;
use tonic::Request;

use crate::accounts::{self, Accounts};
use crate::contacts::{self, Contacts};
use crate::follow_ups::{self, FollowUps};
use crate::wire::{GrpcResult, PageStream};

pub use crate::wire::EXPORT_PAGE_SIZE;

pub struct CustomerApi {
    accounts: Accounts,
    contacts: Contacts,
    follow_ups: FollowUps,
}

impl CustomerApi {
    pub fn new(accounts: Accounts, contacts: Contacts, follow_ups: FollowUps) -> Self {
        Self {
            accounts,
            contacts,
            follow_ups,
        }
    }
}

#[tonic::async_trait]
impl pb::customer_service_server::CustomerService for CustomerApi {
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> GrpcResult<pb::Account> {
        accounts::grpc::create(&self.accounts, request).await
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> GrpcResult<pb::Account> {
        accounts::grpc::get(&self.accounts, request).await
    }

    async fn update_account(
        &self,
        request: Request<pb::UpdateAccountRequest>,
    ) -> GrpcResult<pb::Account> {
        accounts::grpc::update(&self.accounts, request).await
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> GrpcResult<pb::DeleteAccountResponse> {
        accounts::grpc::delete(&self.accounts, request).await
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> GrpcResult<pb::ListAccountsResponse> {
        accounts::grpc::list(&self.accounts, request).await
    }

    type ExportAccountsStream = PageStream<pb::ListAccountsResponse>;

    async fn export_accounts(
        &self,
        request: Request<pb::ExportAccountsRequest>,
    ) -> GrpcResult<Self::ExportAccountsStream> {
        accounts::grpc::export(&self.accounts, request).await
    }

    async fn create_contact(
        &self,
        request: Request<pb::CreateContactRequest>,
    ) -> GrpcResult<pb::Contact> {
        contacts::grpc::create(&self.contacts, request).await
    }

    async fn get_contact(
        &self,
        request: Request<pb::GetContactRequest>,
    ) -> GrpcResult<pb::Contact> {
        contacts::grpc::get(&self.contacts, request).await
    }

    async fn update_contact(
        &self,
        request: Request<pb::UpdateContactRequest>,
    ) -> GrpcResult<pb::Contact> {
        contacts::grpc::update(&self.contacts, request).await
    }

    async fn delete_contact(
        &self,
        request: Request<pb::DeleteContactRequest>,
    ) -> GrpcResult<pb::DeleteContactResponse> {
        contacts::grpc::delete(&self.contacts, request).await
    }

    async fn list_contacts(
        &self,
        request: Request<pb::ListContactsRequest>,
    ) -> GrpcResult<pb::ListContactsResponse> {
        contacts::grpc::list(&self.contacts, request).await
    }

    type ExportContactsStream = PageStream<pb::ListContactsResponse>;

    async fn export_contacts(
        &self,
        request: Request<pb::ExportContactsRequest>,
    ) -> GrpcResult<Self::ExportContactsStream> {
        contacts::grpc::export(&self.contacts, request).await
    }

    async fn create_follow_up(
        &self,
        request: Request<pb::CreateFollowUpRequest>,
    ) -> GrpcResult<pb::FollowUp> {
        follow_ups::grpc::create(&self.follow_ups, request).await
    }

    async fn get_follow_up(
        &self,
        request: Request<pb::GetFollowUpRequest>,
    ) -> GrpcResult<pb::FollowUp> {
        follow_ups::grpc::get(&self.follow_ups, request).await
    }

    async fn update_follow_up(
        &self,
        request: Request<pb::UpdateFollowUpRequest>,
    ) -> GrpcResult<pb::FollowUp> {
        follow_ups::grpc::update(&self.follow_ups, request).await
    }

    async fn delete_follow_up(
        &self,
        request: Request<pb::DeleteFollowUpRequest>,
    ) -> GrpcResult<pb::DeleteFollowUpResponse> {
        follow_ups::grpc::delete(&self.follow_ups, request).await
    }

    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> GrpcResult<pb::ListFollowUpsResponse> {
        follow_ups::grpc::list(&self.follow_ups, request).await
    }

    type ExportFollowUpsStream = PageStream<pb::ListFollowUpsResponse>;

    async fn export_follow_ups(
        &self,
        request: Request<pb::ExportFollowUpsRequest>,
    ) -> GrpcResult<Self::ExportFollowUpsStream> {
        follow_ups::grpc::export(&self.follow_ups, request).await
    }
}
