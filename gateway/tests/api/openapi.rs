//! The OpenAPI document and the docs page.

use serde_json::Value;

use crate::helpers::{ok_json, spawn_app};

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_app().await;
    let doc: Value = ok_json(
        app.http
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in [
        ("/api/v1/accounts", &["get", "post"][..]),
        ("/api/v1/accounts/export", &["get"][..]),
        ("/api/v1/audit", &["get"][..]),
        ("/api/v1/admin/users", &["post"][..]),
        ("/api/v1/admin/users/{id}/status", &["put"][..]),
        ("/api/v1/admin/users/{id}", &["get", "patch"][..]),
        ("/api/v1/admin/organisation/settings", &["get", "put"][..]),
        ("/api/v1/me", &["get", "patch"][..]),
        ("/api/v1/contacts/export", &["get"][..]),
        ("/api/v1/accounts/{id}", &["get", "patch", "delete"][..]),
        ("/api/v1/contacts", &["get", "post"][..]),
        ("/api/v1/contacts/{id}", &["get", "patch", "delete"][..]),
    ] {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"));
        for method in methods {
            let op = &item[method];
            assert!(op.is_object(), "{method} {path} is not documented");
            assert_eq!(
                op["security"][0]["bearer"],
                serde_json::json!([]),
                "{method} {path}"
            );
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
        }
    }
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/token", "post"),
        ("/api/v1/auth/oidc/{provider}/start", "get"),
        ("/api/v1/auth/oidc/{provider}/callback", "get"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/.well-known/jwks.json", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    assert_eq!(
        paths.len(),
        24,
        "undocumented or unexpected paths: {:?}",
        paths.keys()
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "Account",
        "NewAccount",
        "AccountPatch",
        "AccountList",
        "Contact",
        "NewContact",
        "ContactPatch",
        "ContactList",
        "Problem",
        "Profile",
        "ProfilePatch",
        "OrgSettings",
        "OrgSettingsBody",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    let params = doc["paths"]["/api/v1/accounts/{id}"]["patch"]["parameters"]
        .as_array()
        .unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "If-Match" && p["in"] == "header" && p["required"] == true)
    );
    let params = doc["paths"]["/api/v1/accounts"]["get"]["parameters"]
        .as_array()
        .unwrap();
    for name in [
        "page_size",
        "page_token",
        "owner_id",
        "tag",
        "status",
        "q",
        "sort",
        "order",
    ] {
        assert!(
            params
                .iter()
                .any(|p| p["name"] == name && p["in"] == "query"),
            "{name} undocumented"
        );
    }
}

#[tokio::test]
async fn the_docs_page_is_served_offline() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/api/v1/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"), "{html}");
}
