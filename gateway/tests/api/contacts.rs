//! The contact lifecycle through the REST API.

use reqwest::header;
use serde_json::json;

use crate::helpers::{Kind, etag, first_bad_field, ok_json, problem, spawn_app};

#[tokio::test]
async fn create_get_list_patch_delete() {
    let app = spawn_app().await;
    let acme = app.create_account("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let globex = app.create_account("Globex").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let response = app
        .create(
            Kind::Contacts,
            &json!({
                "account_id": acme,
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ada@acme.example",
                "title": "CTO",
                "tags": ["champion"]
            }),
        )
        .await;
    assert_eq!(etag(&response), "\"1\"");
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let ada = ok_json(response, 201).await;
    let id = ada["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/contacts/{id}"));
    assert_eq!(ada["account_id"], acme);
    assert_eq!(ada["first_name"], "Ada");
    assert_eq!(ada["lifecycle_status"], "prospect");
    assert!(ada["phone"].is_null());

    assert_eq!(ok_json(app.get(Kind::Contacts, &id).await, 200).await, ada);

    let grace = app.create_contact(&globex, "Grace").await;
    assert_eq!(
        app.ids(Kind::Contacts, &format!("account_id={acme}")).await,
        [id.as_str()]
    );
    assert_eq!(
        app.ids(Kind::Contacts, &format!("account_id={globex}"))
            .await,
        [grace["id"].as_str().unwrap()]
    );
    assert_eq!(app.ids(Kind::Contacts, "q=lovelace").await, [id.as_str()]);
    assert_eq!(app.ids(Kind::Contacts, "tag=champion").await, [id.as_str()]);
    assert_eq!(app.ids(Kind::Contacts, "").await.len(), 2);

    // Move Ada to Globex, clear her title.
    problem(
        app.patch(Kind::Contacts, &id, &json!({"title": null}), None)
            .await,
        428,
    )
    .await;
    let moved = ok_json(
        app.patch(
            Kind::Contacts,
            &id,
            &json!({"account_id": globex, "title": null}),
            Some("\"1\""),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(moved["account_id"], globex);
    assert!(moved["title"].is_null());
    assert_eq!(moved["last_name"], "Lovelace");
    assert_eq!(moved["version"], 2);
    let body = problem(
        app.patch(
            Kind::Contacts,
            &id,
            &json!({"first_name": "A"}),
            Some("\"1\""),
        )
        .await,
        412,
    )
    .await;
    assert_eq!(body["code"], "version_conflict");

    assert_eq!(
        app.delete(Kind::Contacts, &id, Some("\"2\""))
            .await
            .status(),
        204
    );
    problem(app.get(Kind::Contacts, &id).await, 404).await;
    assert_eq!(app.ids(Kind::Contacts, "").await.len(), 1);
}

#[tokio::test]
async fn required_fields_are_reported_by_the_service() {
    let app = spawn_app().await;
    let field = first_bad_field(
        app.create(Kind::Contacts, &json!({"first_name": "Ada"}))
            .await,
    )
    .await;
    assert_eq!(field, "account_id");
    let acme = app.create_account("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let field = first_bad_field(
        app.create(Kind::Contacts, &json!({"account_id": acme}))
            .await,
    )
    .await;
    assert_eq!(field, "first_name");
    app.assert_nothing_written(Kind::Contacts).await;
}

#[tokio::test]
async fn contact_input_is_checked_like_account_input() {
    let app = spawn_app().await;
    let acme = app.create_account("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cases = [
        (
            json!({"account_id": acme, "first_name": "Ada", "emial": "x"}),
            "emial",
        ),
        (
            json!({"account_id": acme, "first_name": ["Ada"]}),
            "first_name",
        ),
        (
            json!({"account_id": "acme", "first_name": "Ada"}),
            "account_id",
        ),
        (
            json!({"account_id": acme, "first_name": "Ada", "email": "not-an-email"}),
            "email",
        ),
        (
            json!({"account_id": acme, "first_name": "Ada", "tags": ["ok", 7]}),
            "tags[1]",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(
            first_bad_field(app.create(Kind::Contacts, &body).await).await,
            field,
            "{body}"
        );
    }
    app.assert_nothing_written(Kind::Contacts).await;
}
