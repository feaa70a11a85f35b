use crm_proto::customer as pb;
use tonic::Code;

use crate::helpers::{spawn_app, violated_fields};

#[tokio::test]
async fn contact_lifecycle_and_account_link() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let acme = app.create_account("Acme").await;
    let globex = app.create_account("Globex").await;
    let c = app.create_contact(&acme.id, "Ada").await;
    assert_eq!((c.account_id.as_str(), c.version), (acme.id.as_str(), 1));

    let moved = client
        .update_contact(pb::UpdateContactRequest {
            id: c.id.clone(),
            expected_version: 1,
            account_id: Some(globex.id.clone()),
            email: Some("ada@globex.example".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (moved.account_id.as_str(), moved.version),
        (globex.id.as_str(), 2)
    );
    let got = client
        .get_contact(pb::GetContactRequest { id: c.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, moved);

    client
        .delete_contact(pb::DeleteContactRequest {
            id: c.id.clone(),
            expected_version: 2,
        })
        .await
        .unwrap();
    let err = client
        .get_contact(pb::GetContactRequest { id: c.id })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.shutdown().await;
}

#[tokio::test]
async fn contacts_need_a_live_account_and_valid_fields() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let err = client
        .create_contact(pb::CreateContactRequest {
            account_id: "0191d3a0-0000-7000-8000-00000000dead".into(),
            first_name: "Ada".into(),
            owner_id: crate::helpers::OWNER.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["account_id"]);

    let err = client
        .create_contact(pb::CreateContactRequest {
            account_id: "x".into(),
            first_name: "".into(),
            email: "ada@".into(),
            title: "t".repeat(101),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["account_id", "first_name", "email", "title"]
    );

    let acme = app.create_account("Acme").await;
    client
        .delete_account(pb::DeleteAccountRequest {
            id: acme.id.clone(),
            expected_version: 1,
        })
        .await
        .unwrap();
    let err = client
        .create_contact(pb::CreateContactRequest {
            account_id: acme.id.clone(),
            first_name: "Ada".into(),
            owner_id: crate::helpers::OWNER.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["account_id"],
        "a deleted account takes no contacts"
    );
    assert_eq!(app.count("contacts").await, 0);
    // Only the account's create and delete made events.
    assert_eq!(app.count("event_outbox").await, 2);
    app.shutdown().await;
}
