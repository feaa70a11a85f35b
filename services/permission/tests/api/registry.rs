//! The registry of resources and fields: declared by owning services through their event
//! topics, read over `RegistryService`, and what grants, field rules, shares and sharing
//! conditions are checked against. A resource that did not exist before is a declaration, not
//! a migration.

use std::time::Duration;

use crm_proto::permission as pb;
use crm_proto::permission::registry_service_client::RegistryServiceClient;
use crm_record::registry::{Declaration, DeclaredField, DeclaredResource};
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, event, eventually, publish, spawn_with, violated_fields};

fn registry(app: &TestApp) -> RegistryServiceClient<crate::helpers::Signed> {
    RegistryServiceClient::new(crm_testkit::identity::signed(
        app.unsigned.clone(),
        "permission",
    ))
}

async fn resources(app: &TestApp) -> Vec<pb::RegisteredResource> {
    registry(app)
        .list_resources(pb::ListResourcesRequest {})
        .await
        .expect("list resources")
        .into_inner()
        .resources
}

fn field(name: &str, kind: &str, governed: bool, condition: bool) -> DeclaredField {
    DeclaredField {
        name: name.into(),
        kind: kind.into(),
        governed,
        condition,
        custom: name.starts_with("custom."),
    }
}

/// The sales service's declaration of a resource nobody had heard of.
fn quotes(fields: Vec<DeclaredField>) -> Declaration {
    Declaration {
        owner: "sales".into(),
        resources: vec![DeclaredResource {
            name: "quote".into(),
            fields,
        }],
    }
}

fn quote_fields() -> Vec<DeclaredField> {
    vec![
        field("id", "reference", false, false),
        field("title", "text", true, false),
        field("stage", "choice", true, true),
        field("contact_phone", "phone", true, false),
    ]
}

async fn grant(
    app: &TestApp,
    role: &pb::Role,
    resource: &str,
) -> Result<pb::RoleResponse, tonic::Status> {
    let current = app.role(&role.id).await;
    app.org
        .clone()
        .set_grant(pb::SetGrantRequest {
            role_id: role.id.clone(),
            expected_version: current.version,
            grant: Some(pb::Grant {
                resource: 0,
                resource_name: resource.into(),
                action: pb::Action::Read as i32,
                scope: pb::DataScope::All as i32,
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn rule(
    app: &TestApp,
    role: &pb::Role,
    resource: &str,
    field: &str,
    mask: pb::MaskKind,
) -> Result<pb::RoleResponse, tonic::Status> {
    let current = app.role(&role.id).await;
    app.org
        .clone()
        .set_field_rule(pb::SetFieldRuleRequest {
            role_id: role.id.clone(),
            expected_version: current.version,
            rule: Some(pb::FieldRule {
                resource: 0,
                resource_name: resource.into(),
                field: field.into(),
                visibility: pb::FieldVisibility::ReadOnly as i32,
                mask: mask as i32,
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_declaration_on_a_followed_topic_registers_a_new_resource_and_writes_no_audit_entry() {
    let source_topic = crm_testkit::unique("sales-events");
    let app = spawn_with(|s| s.audit.topics = vec![source_topic.clone()]).await;
    let declaration = quotes(quote_fields());
    let declared = event(
        "crm/sales",
        &declaration.event_type(),
        "sales",
        serde_json::to_value(&declaration).unwrap(),
    );
    // A business event after it, to know the consumer has passed the declaration.
    let created = event(
        "crm/sales",
        "sales.quote.created",
        "q-1",
        json!({"quote": {"id": "q-1", "title": "Q"}}),
    );
    publish(&source_topic, &[declared, created]).await;
    eventually(Duration::from_secs(60), "the quote declared", || async {
        resources(&app).await.iter().any(|r| r.name == "quote")
    })
    .await;
    let quote = resources(&app)
        .await
        .into_iter()
        .find(|r| r.name == "quote")
        .unwrap();
    assert_eq!(quote.owner, "sales");
    assert!(quote.declared_at.is_some());
    let names: Vec<&str> = quote.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["contact_phone", "id", "stage", "title"]);
    let stage = quote.fields.iter().find(|f| f.name == "stage").unwrap();
    assert!(stage.condition && stage.governed && stage.built_in && stage.active);
    assert_eq!(stage.kind, "choice");

    // The declaration is nobody's action: only the quote's creation is on the trail.
    eventually(Duration::from_secs(60), "the creation audited", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_entries WHERE record_id = 'q-1'")
            .fetch_one(&app.db)
            .await
            .unwrap()
            == 1
    })
    .await;
    let declarations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_entries WHERE action LIKE '%declared%' OR record_id = 'sales'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(declarations, 0);
}

#[tokio::test]
async fn grants_rules_shares_and_conditions_name_only_what_the_registry_holds() {
    let app = spawn_with(|_| {}).await;
    let role = app.create_role("quoter", None).await;

    // Before the sales service declares quotes, nothing may name them.
    let err = grant(&app, &role, "quote").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["grant.resource"]);
    let err = grant(&app, &role, "Quote!").await.unwrap_err();
    assert_eq!(violated_fields(&err), ["grant.resource"]);

    // Declared: a grant on the new resource is a row, not a migration, and decisions follow it.
    crm_permission::registry::declare(&app.db, &quotes(quote_fields()))
        .await
        .unwrap();
    let granted = grant(&app, &role, "quote").await.expect("grant on quote");
    let g = &granted.role.unwrap().grants[0];
    assert_eq!((g.resource_name.as_str(), g.resource), ("quote", 0));
    let user = app
        .create_user("quoting.user", "a long enough password")
        .await;
    app.assign(&user, &app.role(&role.id).await).await;
    let scope = app
        .access
        .clone()
        .compile_scope(pb::CompileScopeRequest {
            user_id: user.id.clone(),
            resource: 0,
            resource_name: "quote".into(),
            action: pb::Action::Read as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(scope.all, "the grant on quotes applies");

    // Field rules: declared, governed fields; masks only on text.
    rule(&app, &role, "quote", "contact_phone", pb::MaskKind::Phone)
        .await
        .expect("a masked phone");
    for (field, mask, why) in [
        ("nope", pb::MaskKind::Unspecified, "no field"),
        ("id", pb::MaskKind::Unspecified, "not governed"),
        ("stage", pb::MaskKind::Phone, "cannot be masked"),
    ] {
        let err = rule(&app, &role, "quote", field, mask).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(violated_fields(&err), ["rule.field"], "{field}");
        assert!(err.message().contains(why), "{field}: {}", err.message());
    }
    let err = rule(&app, &role, "planet", "x", pb::MaskKind::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["rule.resource"]);

    // Sharing rules test declared condition fields only; shares name registered resources.
    let sales = app.create_department("Sales", None).await;
    let sharing = crm_proto::permission::sharing_service_client::SharingServiceClient::new(
        crm_testkit::identity::signed(app.unsigned.clone(), "permission"),
    );
    let rule_on = |field: &str| pb::CreateSharingRuleRequest {
        name: format!("by {field}"),
        resource: 0,
        resource_name: "quote".into(),
        access: pb::ShareAccess::Read as i32,
        grantee_department_id: sales.id.clone(),
        condition: Some(pb::RecordCondition {
            field: field.into(),
            equals: "won".into(),
        }),
        ..Default::default()
    };
    sharing
        .clone()
        .create_sharing_rule(rule_on("stage"))
        .await
        .expect("a condition on the stage");
    let err = sharing
        .clone()
        .create_sharing_rule(rule_on("title"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["condition.field"]);
    let err = sharing
        .clone()
        .share_record(pb::ShareRecordRequest {
            resource_name: "planet".into(),
            record_id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            access: pb::ShareAccess::Read as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["resource"]);
}

#[tokio::test]
async fn a_field_no_longer_declared_stays_for_its_rules_but_takes_no_new_ones() {
    let app = spawn_with(|_| {}).await;
    crm_permission::registry::declare(&app.db, &quotes(quote_fields()))
        .await
        .unwrap();
    let role = app.create_role("quoter", None).await;
    rule(&app, &role, "quote", "contact_phone", pb::MaskKind::Phone)
        .await
        .unwrap();

    // The next release drops the phone; another service claims quotes too.
    let mut fewer = quote_fields();
    fewer.retain(|f| f.name != "contact_phone");
    crm_permission::registry::declare(&app.db, &quotes(fewer))
        .await
        .unwrap();
    let mut intruder = quotes(vec![field("title", "integer", true, false)]);
    intruder.owner = "ticket".into();
    crm_permission::registry::declare(&app.db, &intruder)
        .await
        .unwrap();

    let quote = resources(&app)
        .await
        .into_iter()
        .find(|r| r.name == "quote")
        .unwrap();
    assert_eq!(quote.owner, "sales", "a resource keeps its owner");
    let phone = quote
        .fields
        .iter()
        .find(|f| f.name == "contact_phone")
        .unwrap();
    assert!(!phone.active);
    let title = quote.fields.iter().find(|f| f.name == "title").unwrap();
    assert_eq!(title.kind, "text", "the intruder changed nothing");
    assert_eq!(
        app.role(&role.id).await.field_rules.len(),
        1,
        "the rule stays"
    );
    let other = app.create_role("other", None).await;
    let err = rule(&app, &other, "quote", "contact_phone", pb::MaskKind::Phone)
        .await
        .unwrap_err();
    assert!(err.message().contains("no longer"), "{}", err.message());
}

#[tokio::test]
async fn reading_the_registry_needs_organisation_read() {
    let app = spawn_with(|_| {}).await;
    let mut request = tonic::Request::new(pb::ListResourcesRequest {});
    crm_access::Access::new(uuid::Uuid::now_v7()).to_metadata(request.metadata_mut());
    let err = registry(&app).list_resources(request).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut request = tonic::Request::new(pb::ListResourcesRequest {});
    crm_access::Access::new(uuid::Uuid::now_v7())
        .with(
            crm_access::Resource::ORGANISATION,
            crm_access::Action::Read,
            crm_access::Scope::everything(),
        )
        .to_metadata(request.metadata_mut());
    let listed = registry(&app).list_resources(request).await.unwrap();
    let names: Vec<String> = listed
        .into_inner()
        .resources
        .into_iter()
        .map(|r| r.name)
        .collect();
    for name in ["account", "audit", "contact", "organisation"] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
}
