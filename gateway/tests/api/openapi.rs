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
        ("/api/v1/admin/departments", &["get", "post"][..]),
        (
            "/api/v1/admin/departments/{id}",
            &["get", "patch", "delete"][..],
        ),
        ("/api/v1/admin/roles", &["get", "post"][..]),
        ("/api/v1/admin/roles/{id}", &["get", "patch", "delete"][..]),
        (
            "/api/v1/admin/roles/{id}/grants/{resource}/{action}",
            &["put", "delete"][..],
        ),
        (
            "/api/v1/admin/roles/{id}/field-rules/{resource}/{field}",
            &["put", "delete"][..],
        ),
        ("/api/v1/admin/users/{id}/org", &["get"][..]),
        ("/api/v1/admin/users/{id}/departments", &["put"][..]),
        ("/api/v1/admin/users/{id}/manager", &["put"][..]),
        ("/api/v1/admin/users/{id}/password", &["put"][..]),
        ("/api/v1/admin/shares/{resource}/{record_id}", &["get"][..]),
        ("/api/v1/admin/sharing-rules", &["get", "post"][..]),
        ("/api/v1/admin/sharing-rules/{id}", &["delete"][..]),
        ("/api/v1/admin/api-clients", &["post"][..]),
        ("/api/v1/admin/api-clients/{id}", &["get"][..]),
        ("/api/v1/admin/api-clients/{id}/secret", &["post"][..]),
        ("/api/v1/admin/api-clients/{id}/status", &["put"][..]),
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
        "Department",
        "Role",
        "Grant",
        "FieldRule",
        "ResourceName",
        "ActionName",
        "DataScope",
        "Visibility",
        "Mask",
        "UserOrg",
        "SharingRule",
        "ApiClient",
        "ApiClientWithSecret",
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

/// Every documented operation is served, guarded as documented, and documents the errors it can
/// answer: routes and their documents are collected together (`utoipa_axum`), and this walks
/// the document against the running gateway so neither can go missing.
#[tokio::test]
async fn every_documented_operation_is_served_and_guarded_as_documented() {
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
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let problem =
        &doc["components"]["responses"]["Unauthorized"]["content"]["application/problem+json"];
    assert_eq!(problem["schema"]["$ref"], "#/components/schemas/Problem");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = path
            .replace("{id}", "00000000-0000-4000-8000-000000000001")
            .replace("{role_id}", "00000000-0000-4000-8000-000000000002")
            .replace("{user_id}", "00000000-0000-4000-8000-000000000003")
            .replace("{record_id}", "00000000-0000-4000-8000-000000000004")
            .replace("{resource}", "account")
            .replace("{action}", "read")
            .replace("{field}", "phone")
            .replace("{entity}", "account")
            .replace("{key}", "region")
            .replace("{provider}", "nobody");
        assert!(!url.contains('{'), "unknown parameter in {path}");
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let what = format!("{method} {path}");
            assert!(op["responses"]["500"].is_object(), "{what} lacks 500");
            assert!(
                op["responses"]["400"].is_object() || op["security"].is_null(),
                "{what} lacks 400"
            );
            let response = app
                .http
                .request(method.to_uppercase().parse().unwrap(), app.url(&url))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            // The router's own 404 ("no such route"), not a handler's (an unknown SSO provider
            // is a documented 404).
            let body: Value = response.json().await.unwrap_or_default();
            let unrouted = status == 404 && body["detail"] == "no such route";
            assert!(
                !unrouted && status != 405,
                "{what} is documented but not served ({status}: {body})"
            );
            if op["security"].is_null() {
                // How one gets a token: no bearer token required.
                assert!(
                    path.starts_with("/api/v1/auth/") || path.starts_with("/.well-known/"),
                    "{what} needs no token"
                );
                assert_ne!(status, 401, "{what} is documented as open");
                continue;
            }
            assert_eq!(op["security"][0]["bearer"], serde_json::json!([]), "{what}");
            assert_eq!(status, 401, "{what} is served without a token");
            assert!(op["responses"]["401"].is_object(), "{what} lacks 401");
            assert!(op["responses"]["403"].is_object(), "{what} lacks 403");
            match op["x-crm-permission"].as_str() {
                // The caller's own profile needs no grant; custom field definitions need READ on
                // the entity named in the path (or on customization), checked by the handler.
                None => assert!(
                    path == "/api/v1/me" || path.starts_with("/api/v1/fields/"),
                    "{what} names no grant"
                ),
                Some(grant) => {
                    let (resource, action) = grant.split_once(':').unwrap();
                    assert!(
                        crm_access::Resource::parse(resource).is_some(),
                        "{what}: {grant}"
                    );
                    assert!(
                        crm_access::Action::parse(action).is_some(),
                        "{what}: {grant}"
                    );
                }
            }
            match method.as_str() {
                "post" => assert!(op["responses"]["422"].is_object(), "{what} lacks 422"),
                "patch" => assert!(op["responses"]["428"].is_object(), "{what} lacks 428"),
                _ => {}
            }
        }
    }
    assert!(operations > 30, "{operations} operations");
    let paths = &doc["paths"];
    assert_eq!(
        paths["/api/v1/accounts"]["post"]["x-crm-permission"],
        "account:create"
    );
    assert_eq!(
        paths["/api/v1/contacts/export"]["get"]["x-crm-permission"],
        "contact:export"
    );
    assert_eq!(
        paths["/api/v1/audit"]["get"]["x-crm-permission"],
        "audit:read"
    );
    let settings = &paths["/api/v1/admin/organisation/settings"]["put"]["responses"];
    assert!(settings["412"].is_object() && settings["428"].is_object());
    assert!(
        paths["/api/v1/admin/users/{id}/status"]["put"]["responses"]["428"].is_null(),
        "no If-Match there"
    );
    // Grants and field rules are parts of their role: every change takes the role's If-Match.
    for method in ["put", "delete"] {
        let grant = &paths["/api/v1/admin/roles/{id}/grants/{resource}/{action}"][method];
        assert!(grant["responses"]["428"].is_object(), "{method} grant");
        assert_eq!(
            grant["x-crm-permission"], "organisation:update",
            "{method} grant"
        );
    }
    for (path, method, grant) in [
        ("/api/v1/admin/departments", "get", "organisation:read"),
        ("/api/v1/admin/departments", "post", "organisation:create"),
        (
            "/api/v1/admin/departments/{id}",
            "patch",
            "organisation:update",
        ),
        (
            "/api/v1/admin/departments/{id}",
            "delete",
            "organisation:delete",
        ),
        (
            "/api/v1/admin/sharing-rules/{id}",
            "delete",
            "organisation:delete",
        ),
        ("/api/v1/admin/api-clients", "post", "organisation:create"),
    ] {
        assert_eq!(
            paths[path][method]["x-crm-permission"], grant,
            "{method} {path}"
        );
    }
    assert!(
        paths["/api/v1/admin/departments/{id}"]["delete"]["responses"]["428"].is_null(),
        "If-Match is optional on a delete"
    );
    let login = &paths["/api/v1/auth/login"]["post"]["responses"];
    assert!(login["429"].is_object() && login["401"].is_object());
    assert!(login["422"].is_null(), "no idempotency keys on sign-in");
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
