//! Decisions over a small organisation built through the API:
//!
//! ```text
//! departments:  HQ ─┬─ Sales ─┬─ East
//!                   │         └─ North
//!                   └─ Service
//! managers:     boss ─ mia ─┬─ rep1 ─ intern
//!                           └─ rep2
//! people:       boss: auditor, in HQ           mia: manager, in Sales
//!               rep1: rep, in East             rep2: rep + agent, in North (also Service)
//!               intern: no roles, in East
//! roles:        rep: lead read/create own; contact read own, ssn hidden
//!               manager (inherits rep): lead read department_and_children,
//!                                       lead export own_and_subordinates
//!               agent: ticket read department, ticket phone masked;
//!                      contact read all, phone masked, notes hidden
//!               auditor: lead and contact read all, contact phone and email masked
//! ```

use crm_proto::permission as pb;
use pb::{Action, DataScope, DecisionReason, FieldVisibility, MaskKind, Resource};
use tonic::Code;

use crate::helpers::{TestApp, spawn_app, violated_fields};

struct Org {
    hq: pb::Department,
    sales: pb::Department,
    east: pb::Department,
    north: pb::Department,
    service: pb::Department,
    boss: pb::User,
    mia: pb::User,
    rep1: pb::User,
    rep2: pb::User,
    intern: pb::User,
}

async fn build(app: &TestApp) -> Org {
    let hq = app.create_department("HQ", None).await;
    let sales = app.create_department("Sales", Some(&hq)).await;
    let east = app.create_department("East", Some(&sales)).await;
    let north = app.create_department("North", Some(&sales)).await;
    let service = app.create_department("Service", Some(&hq)).await;

    let rep = app.create_role("rep", None).await;
    app.grant(&rep, Resource::Lead, Action::Read, DataScope::Own)
        .await;
    app.grant(&rep, Resource::Lead, Action::Create, DataScope::Own)
        .await;
    app.grant(&rep, Resource::Contact, Action::Read, DataScope::Own)
        .await;
    app.field_rule(
        &rep,
        Resource::Contact,
        "ssn",
        FieldVisibility::Hidden,
        MaskKind::Unspecified,
    )
    .await;
    let manager = app.create_role("manager", Some(&rep)).await;
    app.grant(
        &manager,
        Resource::Lead,
        Action::Read,
        DataScope::DepartmentAndChildren,
    )
    .await;
    app.grant(
        &manager,
        Resource::Lead,
        Action::Export,
        DataScope::OwnAndSubordinates,
    )
    .await;
    let agent = app.create_role("agent", None).await;
    app.grant(
        &agent,
        Resource::Ticket,
        Action::Read,
        DataScope::Department,
    )
    .await;
    app.grant(&agent, Resource::Contact, Action::Read, DataScope::All)
        .await;
    for (resource, field, visibility, mask) in [
        (
            Resource::Ticket,
            "phone",
            FieldVisibility::ReadOnly,
            MaskKind::Phone,
        ),
        (
            Resource::Contact,
            "phone",
            FieldVisibility::ReadOnly,
            MaskKind::Phone,
        ),
        (
            Resource::Contact,
            "notes",
            FieldVisibility::Hidden,
            MaskKind::Unspecified,
        ),
    ] {
        app.field_rule(&agent, resource, field, visibility, mask)
            .await;
    }
    let auditor = app.create_role("auditor", None).await;
    app.grant(&auditor, Resource::Lead, Action::Read, DataScope::All)
        .await;
    app.grant(&auditor, Resource::Contact, Action::Read, DataScope::All)
        .await;
    app.field_rule(
        &auditor,
        Resource::Contact,
        "phone",
        FieldVisibility::ReadOnly,
        MaskKind::Phone,
    )
    .await;
    app.field_rule(
        &auditor,
        Resource::Contact,
        "email",
        FieldVisibility::ReadOnly,
        MaskKind::Email,
    )
    .await;

    let boss = app.member("boss").await;
    let mia = app.member("mia").await;
    let rep1 = app.member("rep1").await;
    let rep2 = app.member("rep2").await;
    let intern = app.member("intern").await;
    app.set_manager(&mia, &boss).await;
    app.set_manager(&rep1, &mia).await;
    app.set_manager(&rep2, &mia).await;
    app.set_manager(&intern, &rep1).await;
    app.place(&boss, &hq, &[]).await;
    app.place(&mia, &sales, &[]).await;
    app.place(&rep1, &east, &[]).await;
    app.place(&rep2, &north, &[&service]).await;
    app.place(&intern, &east, &[]).await;
    app.assign(&boss, &auditor).await;
    app.assign(&mia, &manager).await;
    app.assign(&rep1, &rep).await;
    app.assign(&rep2, &rep).await;
    app.assign(&rep2, &agent).await;
    Org {
        hq,
        sales,
        east,
        north,
        service,
        boss,
        mia,
        rep1,
        rep2,
        intern,
    }
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

/// Check on lead/read for every (user, record) pair, against rows computed by hand from the
/// drawing; CompileScope must agree with every cell.
#[tokio::test]
async fn check_and_compile_scope_agree_on_the_lead_matrix() {
    let app = spawn_app().await;
    let o = build(&app).await;
    let records = [
        (&o.mia, &o.sales),
        (&o.rep1, &o.east),
        (&o.intern, &o.north),
        (&o.boss, &o.hq),
        (&o.rep2, &o.service),
    ];
    use DecisionReason::{Granted as G, NoGrant as N, OutOfScope as X};
    #[rustfmt::skip]
    let rows = [
        //          mia/Sales rep1/East intern/North boss/HQ rep2/Service
        (&o.mia,    [G,        G,        G,           X,      X]),  // own + Sales subtree
        (&o.rep1,   [X,        G,        X,           X,      X]),  // own
        (&o.rep2,   [X,        X,        X,           X,      G]),  // own (agent: no leads)
        (&o.boss,   [G,        G,        G,           G,      G]),  // all
        (&o.intern, [N,        N,        N,           N,      N]),  // no roles
    ];
    let version = app.permission_version().await;
    for (user, row) in rows {
        let scope = app.compile(user, Resource::Lead, Action::Read).await;
        assert_eq!(scope.permission_version, version);
        for ((owner, department), want) in records.iter().zip(row) {
            let got = app
                .check(
                    user,
                    Resource::Lead,
                    Action::Read,
                    Some((owner, department)),
                )
                .await;
            let what = format!(
                "{} reading {}'s lead in {}",
                user.username, owner.username, department.name
            );
            assert_eq!(got.reason, want as i32, "{what}");
            assert_eq!(got.allowed, want == G, "{what}");
            assert_eq!(got.permission_version, version);
            // The SQL predicate a service would run, evaluated here.
            let covered = scope.all
                || scope.owner_ids.contains(&owner.id)
                || scope.department_ids.contains(&department.id);
            assert_eq!(covered, got.allowed, "compiled scope disagrees: {what}");
        }
    }

    let mia = app.compile(&o.mia, Resource::Lead, Action::Read).await;
    assert!(!mia.all);
    assert_eq!(mia.owner_ids, [o.mia.id.as_str()]);
    assert_eq!(
        mia.department_ids,
        sorted(&[&o.sales.id, &o.east.id, &o.north.id])
    );
    let boss = app.compile(&o.boss, Resource::Lead, Action::Read).await;
    assert!(boss.all && boss.owner_ids.is_empty() && boss.department_ids.is_empty());
    let intern = app.compile(&o.intern, Resource::Lead, Action::Read).await;
    assert!(!intern.all && intern.owner_ids.is_empty() && intern.department_ids.is_empty());
    // Without a record, Check asks "in any scope at all".
    assert!(
        app.check(&o.rep1, Resource::Lead, Action::Create, None)
            .await
            .allowed
    );
    assert!(
        !app.check(&o.rep1, Resource::Lead, Action::Export, None)
            .await
            .allowed
    );
    app.shutdown().await;
}

#[tokio::test]
async fn managers_see_subordinates_transitively_and_subtrees_follow_the_tree() {
    let app = spawn_app().await;
    let o = build(&app).await;
    let export = app.compile(&o.mia, Resource::Lead, Action::Export).await;
    assert_eq!(
        export.owner_ids,
        sorted(&[&o.mia.id, &o.rep1.id, &o.rep2.id, &o.intern.id]),
        "rep1's intern is mia's too"
    );
    assert!(export.department_ids.is_empty());
    // Role inheritance: mia may create leads through rep, which manager inherits from.
    assert!(
        app.check(&o.mia, Resource::Lead, Action::Create, None)
            .await
            .allowed
    );

    // A new department under Sales joins mia's subtree, at a new permission version.
    let before = app.permission_version().await;
    let west = app.create_department("West", Some(&o.sales)).await;
    let read = app.compile(&o.mia, Resource::Lead, Action::Read).await;
    assert_eq!(read.permission_version, before + 1);
    assert!(read.department_ids.contains(&west.id));
    // rep2 sees their own, and, as an agent, tickets of both their departments.
    let tickets = app.compile(&o.rep2, Resource::Ticket, Action::Read).await;
    assert_eq!(tickets.owner_ids, [o.rep2.id.as_str()]);
    assert_eq!(
        tickets.department_ids,
        sorted(&[&o.north.id, &o.service.id])
    );
    // Moving the intern under rep2 keeps them mia's (still below her).
    app.set_manager(&o.intern, &o.rep2).await;
    let export = app.compile(&o.mia, Resource::Lead, Action::Export).await;
    assert!(export.owner_ids.contains(&o.intern.id));
    assert_eq!(export.permission_version, before + 2);
    app.shutdown().await;
}

#[tokio::test]
async fn field_rules_merge_most_permissive_across_granting_roles() {
    let app = spawn_app().await;
    let o = build(&app).await;
    let field = |f: &str, visibility: FieldVisibility, mask: MaskKind| pb::FieldAccess {
        field: f.into(),
        visibility: visibility as i32,
        mask: mask as i32,
    };
    // rep alone: ssn hidden.
    let rep1 = app.compile(&o.rep1, Resource::Contact, Action::Read).await;
    assert_eq!(
        rep1.fields,
        [field("ssn", FieldVisibility::Hidden, MaskKind::Unspecified)]
    );
    // boss (auditor): phone and email masked.
    let boss = app.compile(&o.boss, Resource::Contact, Action::Read).await;
    assert_eq!(
        boss.fields,
        [
            field("email", FieldVisibility::ReadOnly, MaskKind::Email),
            field("phone", FieldVisibility::ReadOnly, MaskKind::Phone),
        ]
    );
    // rep2 (rep + agent): each role leaves unrestricted what the other restricts, so the union
    // restricts nothing.
    let rep2 = app.compile(&o.rep2, Resource::Contact, Action::Read).await;
    assert!(rep2.all, "agent reads every contact");
    assert!(rep2.fields.is_empty());
    // On tickets only agent grants anything: rep's lack of ticket rules does not unmask.
    let tickets = app.compile(&o.rep2, Resource::Ticket, Action::Read).await;
    assert_eq!(
        tickets.fields,
        [field("phone", FieldVisibility::ReadOnly, MaskKind::Phone)]
    );
    // boss also becomes an agent: phone masked by both stays masked; email and notes are each
    // unrestricted for one of the roles.
    let agent = app
        .org
        .clone()
        .list_roles(pb::ListRolesRequest {})
        .await
        .unwrap()
        .into_inner()
        .roles
        .into_iter()
        .find(|r| r.name == "agent")
        .unwrap();
    app.assign(&o.boss, &agent).await;
    let boss = app.compile(&o.boss, Resource::Contact, Action::Read).await;
    assert_eq!(
        boss.fields,
        [field("phone", FieldVisibility::ReadOnly, MaskKind::Phone)]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn explain_names_roles_grants_and_reasons() {
    let app = spawn_app().await;
    let o = build(&app).await;
    let explain =
        |user: &pb::User, action: Action, record: Option<(&pb::User, &pb::Department)>| {
            let mut access = app.access.clone();
            let request = pb::ExplainRequest {
                user_id: user.id.clone(),
                resource: Resource::Lead as i32,
                resource_name: String::new(),
                action: action as i32,
                record: record.map(|(owner, department)| pb::RecordRef {
                    owner_id: owner.id.clone(),
                    department_id: department.id.clone(),
                    ..Default::default()
                }),
            };
            async move { access.explain(request).await.unwrap().into_inner() }
        };
    let e = explain(&o.mia, Action::Create, None).await;
    assert!(e.allowed);
    assert_eq!(e.reason, DecisionReason::Granted as i32);
    assert_eq!(
        e.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["manager"]
    );
    assert_eq!(e.grants.len(), 1);
    let g = &e.grants[0];
    assert_eq!(
        (
            g.assigned_role.as_ref().unwrap().name.as_str(),
            g.granting_role.as_ref().unwrap().name.as_str()
        ),
        ("manager", "rep")
    );
    assert_eq!(
        e.summary,
        "allowed: role manager (inheriting from rep) grants own"
    );

    let e = explain(&o.rep1, Action::Read, Some((&o.mia, &o.sales))).await;
    assert!(!e.allowed);
    assert_eq!(e.reason, DecisionReason::OutOfScope as i32);
    assert!(!e.grants[0].covers_record);
    assert!(
        e.summary
            .starts_with("denied: the record is outside every scope"),
        "{}",
        e.summary
    );
    assert_eq!(e.scope.unwrap().owner_ids, [o.rep1.id.as_str()]);

    let e = explain(&o.mia, Action::Read, Some((&o.rep1, &o.east))).await;
    assert!(e.allowed);
    let covering: Vec<_> = e
        .grants
        .iter()
        .map(|g| {
            (
                g.granting_role.as_ref().unwrap().name.as_str(),
                g.scope,
                g.covers_record,
            )
        })
        .collect();
    assert_eq!(
        covering,
        [
            ("manager", DataScope::DepartmentAndChildren as i32, true),
            ("rep", DataScope::Own as i32, false),
        ]
    );

    let e = explain(&o.intern, Action::Read, None).await;
    assert_eq!(e.reason, DecisionReason::NoGrant as i32);
    assert!(e.roles.is_empty() && e.grants.is_empty());
    assert_eq!(
        e.summary,
        "denied: the user holds no roles, so nothing grants read on lead"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_disabled_user_is_denied_everything_until_enabled() {
    let app = spawn_app().await;
    let o = build(&app).await;
    let record = Some((&o.boss, &o.hq));
    assert!(
        app.check(&o.boss, Resource::Lead, Action::Read, record)
            .await
            .allowed
    );
    let before = app.permission_version().await;
    let disabled = app
        .users
        .clone()
        .set_user_status(pb::SetUserStatusRequest {
            id: o.boss.id.clone(),
            status: pb::UserStatus::Disabled as i32,
            expected_version: o.boss.version,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        app.permission_version().await,
        before + 1,
        "disabling changes decisions"
    );
    for resource in [Resource::Lead, Resource::Contact, Resource::Ticket] {
        let d = app.check(&o.boss, resource, Action::Read, record).await;
        assert!(!d.allowed);
        assert_eq!(d.reason, DecisionReason::UserDisabled as i32);
        assert_eq!(d.permission_version, before + 1);
        let scope = app.compile(&o.boss, resource, Action::Read).await;
        assert!(!scope.all && scope.owner_ids.is_empty() && scope.department_ids.is_empty());
        assert!(scope.fields.is_empty());
    }
    app.users
        .clone()
        .set_user_status(pb::SetUserStatusRequest {
            id: o.boss.id.clone(),
            status: pb::UserStatus::Active as i32,
            expected_version: disabled.version,
        })
        .await
        .unwrap();
    assert!(
        app.check(&o.boss, Resource::Lead, Action::Read, record)
            .await
            .allowed
    );
    assert_eq!(app.permission_version().await, before + 2);
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_users_are_denied_and_bad_questions_are_invalid() {
    let app = spawn_app().await;
    let mut access = app.access.clone();
    let stranger = uuid::Uuid::now_v7().to_string();
    let d = access
        .check(pb::CheckRequest {
            user_id: stranger.clone(),
            resource: Resource::Lead as i32,
            resource_name: String::new(),
            action: Action::Read as i32,
            record: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (d.allowed, d.reason),
        (false, DecisionReason::UnknownUser as i32)
    );
    let err = access
        .check(pb::CheckRequest {
            user_id: "nobody".into(),
            resource: 0,
            resource_name: String::new(),
            action: 99,
            record: Some(pb::RecordRef {
                owner_id: "x".into(),
                department_id: "y".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        [
            "user_id",
            "resource",
            "action",
            "record.owner_id",
            "record.department_id"
        ]
    );
    let err = access
        .compile_scope(pb::CompileScopeRequest {
            user_id: stranger.clone(),
            resource: Resource::Lead as i32,
            resource_name: String::new(),
            action: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["action"]);
    let err = access
        .explain(pb::ExplainRequest {
            user_id: stranger,
            resource: -3,
            resource_name: String::new(),
            action: Action::Read as i32,
            record: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["resource"]);
    app.shutdown().await;
}
