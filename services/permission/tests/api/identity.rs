//! The permission service trusts no call it cannot verify (ADR 0012): administration, scopes
//! and the audit trail were served to any in-cluster caller without an access context before.

use crm_proto::permission as pb;
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn calls_without_a_verified_identity_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let forged = crm_access::Access::system(uuid::Uuid::now_v7());
    fn with<T>(forged: &crm_access::Access, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        forged.to_metadata(request.metadata_mut());
        request
    }
    let mut org = pb::org_service_client::OrgServiceClient::new(app.unsigned.clone());
    let mut access = pb::access_service_client::AccessServiceClient::new(app.unsigned.clone());
    let mut audit = pb::audit_service_client::AuditServiceClient::new(app.unsigned.clone());
    let mut users = pb::user_service_client::UserServiceClient::new(app.unsigned.clone());

    let refusals = [
        org.list_roles(pb::ListRolesRequest::default())
            .await
            .unwrap_err(),
        org.list_departments(with(&forged, pb::ListDepartmentsRequest::default()))
            .await
            .unwrap_err(),
        org.create_department(with(
            &forged,
            pb::CreateDepartmentRequest {
                name: "Shadow IT".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err(),
        access
            .compile_scope(pb::CompileScopeRequest::default())
            .await
            .unwrap_err(),
        audit
            .list_audit_entries(with(&forged, pb::ListAuditEntriesRequest::default()))
            .await
            .unwrap_err(),
        users
            .create_user(with(
                &forged,
                pb::CreateUserRequest {
                    username: "mallory".into(),
                    password: "correct horse battery staple".into(),
                    display_name: "Mallory".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err(),
    ];
    for status in refusals {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(
            status.message().starts_with(crm_identity::REFUSED),
            "{status:?}"
        );
    }
    let (departments,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM departments WHERE name = 'Shadow IT'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let (users,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE username = 'mallory'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((departments, users), (0, 0), "nothing written");
    app.shutdown().await;
}
