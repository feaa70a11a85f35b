//! Users' time zone and language, and the organisation's defaults (ADR 0014): who may change
//! them, what bad input is refused with, versions, and the events that carry the changes.

use std::time::Duration;

use crm_access::{Access, Action, Resource, Scope};
use crm_proto::permission as pb;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app, spawn_with, violated_fields};

/// A request made for `access`'s user (their context, signed by the test client).
fn as_user<T>(access: &Access, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    access.to_metadata(request.metadata_mut());
    request
}

fn user_context(user: &pb::User) -> Access {
    Access::new(user.id.parse().unwrap())
}

fn admin_context(user: &pb::User) -> Access {
    user_context(user).with(Resource::ORGANISATION, Action::Update, Scope::everything())
}

fn profile(
    user: &pb::User,
    version: i64,
    time_zone: Option<&str>,
    locale: Option<&str>,
) -> pb::UpdateUserProfileRequest {
    pb::UpdateUserProfileRequest {
        id: user.id.clone(),
        expected_version: version,
        display_name: None,
        time_zone: time_zone.map(String::from),
        locale: locale.map(String::from),
    }
}

async fn get(app: &TestApp, id: &str) -> pb::User {
    app.users
        .clone()
        .get_user(pb::GetUserRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn users_choose_their_own_time_zone_and_language_else_the_organisations_apply() {
    let app = spawn_app().await;
    let wei = app.member("zhang.wei").await;
    // Nothing chosen: the configured organisation defaults apply.
    assert_eq!((wei.time_zone.as_str(), wei.locale.as_str()), ("", ""));
    assert_eq!(
        (
            wei.effective_time_zone.as_str(),
            wei.effective_locale.as_str()
        ),
        ("Asia/Shanghai", "zh-CN")
    );

    // Their own change, with their own context: no organisation grant needed.
    let me = user_context(&wei);
    let changed = app
        .users
        .clone()
        .update_user_profile(as_user(
            &me,
            pb::UpdateUserProfileRequest {
                display_name: Some(" Wei Zhang ".into()),
                ..profile(&wei, 1, Some("America/New_York"), Some("EN"))
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.version, 2);
    assert_eq!(changed.display_name, "Wei Zhang");
    assert_eq!(
        (changed.time_zone.as_str(), changed.locale.as_str()),
        ("America/New_York", "en"),
        "stored as the tz database and BCP 47 spell them"
    );
    assert_eq!(
        (
            changed.effective_time_zone.as_str(),
            changed.effective_locale.as_str()
        ),
        ("America/New_York", "en")
    );
    assert_eq!(get(&app, &wei.id).await, changed, "a read answers the same");
    // Reading their own record needs no grant either.
    let own = app
        .users
        .clone()
        .get_user(as_user(&me, pb::GetUserRequest { id: wei.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own, changed);

    // The same values again change nothing: no new version.
    let same = app
        .users
        .clone()
        .update_user_profile(as_user(
            &me,
            profile(&wei, 2, Some("America/New_York"), Some("en")),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.version, 2);

    // Cleared: back to the organisation's defaults. An empty display name is the username.
    let cleared = app
        .users
        .clone()
        .update_user_profile(as_user(
            &me,
            pb::UpdateUserProfileRequest {
                display_name: Some(String::new()),
                ..profile(&wei, 2, Some(""), None)
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.version, 3);
    assert_eq!(cleared.display_name, "zhang.wei");
    assert_eq!(cleared.time_zone, "");
    assert_eq!(cleared.locale, "en", "absent: unchanged");
    assert_eq!(cleared.effective_time_zone, "Asia/Shanghai");

    // A stale version is a conflict, and changes nothing.
    let err = app
        .users
        .clone()
        .update_user_profile(as_user(&me, profile(&wei, 2, Some("Europe/Berlin"), None)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        crm_errors::ApiError::from_status(&err).code,
        crm_errors::Code::VersionConflict
    );
    assert_eq!(get(&app, &wei.id).await.version, 3);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_profiles_are_refused_field_by_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let user = app.member("li.na").await;
    let me = user_context(&user);
    let err = app
        .users
        .clone()
        .update_user_profile(as_user(
            &me,
            pb::UpdateUserProfileRequest {
                display_name: Some("x".repeat(201)),
                ..profile(&user, 1, Some("Asia/Beijing"), Some("zh_CN"))
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        ["display_name", "time_zone", "locale"]
    );
    let problem = crm_errors::ApiError::from_status(&err);
    assert!(
        problem.violations[1].message.contains("IANA time zone"),
        "{problem:?}"
    );
    assert_eq!(problem.violations[2].message, "must be zh-CN or en");
    for (time_zone, locale, field) in [
        (Some("asia/shanghai"), None, "time_zone"),
        (Some("+08:00"), None, "time_zone"),
        (Some("CST"), None, "time_zone"),
        (None, Some("zh"), "locale"),
        (None, Some("en-US"), "locale"),
    ] {
        let err = app
            .users
            .clone()
            .update_user_profile(as_user(&me, profile(&user, 1, time_zone, locale)))
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), [field], "{time_zone:?} {locale:?}");
    }
    // Bad id and version: reported with the rest.
    let err = app
        .users
        .clone()
        .update_user_profile(pb::UpdateUserProfileRequest {
            id: "nobody".into(),
            expected_version: 0,
            locale: Some("fr".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["id", "expected_version", "locale"]);
    // An unknown user.
    let err = app
        .users
        .clone()
        .update_user_profile(pb::UpdateUserProfileRequest {
            id: uuid::Uuid::now_v7().to_string(),
            expected_version: 1,
            locale: Some("en".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(get(&app, &user.id).await.version, 1);
    let updates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM event_outbox WHERE event_type = 'permission.user.updated'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(updates, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn only_the_user_or_an_organisation_administrator_may_change_a_profile() {
    let app = spawn_app().await;
    let alice = app.member("alice").await;
    let mallory = app.member("mallory").await;
    let admin = app.member("admin").await;

    // Mallory, without organisation grants, may neither change nor read Alice.
    let err = app
        .users
        .clone()
        .update_user_profile(as_user(
            &user_context(&mallory),
            profile(&alice, 1, Some("Europe/London"), None),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // … and bad input does not tell her more than that.
    let err = app
        .users
        .clone()
        .update_user_profile(as_user(
            &user_context(&mallory),
            profile(&alice, 1, Some("Nowhere/Special"), None),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = app
        .users
        .clone()
        .get_user(as_user(
            &user_context(&mallory),
            pb::GetUserRequest {
                id: alice.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A grant to read is not one to change.
    let reader =
        user_context(&mallory).with(Resource::ORGANISATION, Action::Read, Scope::everything());
    let err = app
        .users
        .clone()
        .update_user_profile(as_user(
            &reader,
            profile(&alice, 1, Some("Europe/London"), None),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(get(&app, &alice.id).await.version, 1, "nothing changed");

    // An administrator (organisation UPDATE) may, and is named as the actor of the event.
    let changed = app
        .users
        .clone()
        .update_user_profile(as_user(
            &admin_context(&admin),
            profile(&alice, 1, Some("Europe/London"), Some("en")),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.effective_time_zone, "Europe/London");

    let events =
        crm_testkit::collect_events(&app.brokers, &app.topic, 4, Duration::from_secs(60)).await;
    let updated = &events
        .iter()
        .find(|(e, _)| e.event_type == "permission.user.updated")
        .expect("a permission.user.updated event")
        .0;
    assert_eq!(updated.subject, alice.id);
    assert_eq!(updated.data["version"], 2);
    assert_eq!(
        updated.data["changes"],
        serde_json::json!({
            "time_zone": {"old": null, "new": "Europe/London"},
            "locale": {"old": null, "new": "en"},
        })
    );
    assert_eq!(updated.data["actor"]["user_id"], admin.id.as_str());
    app.shutdown().await;
}

#[tokio::test]
async fn organisation_defaults_start_from_the_configuration_and_change_with_versions() {
    let app = spawn_with(|s| {
        s.org.default_time_zone = crm_access::Tz::Europe__Berlin;
        s.org.default_locale = crm_access::Locale::En;
    })
    .await;
    let follower = app.member("follower").await;
    let own = app.member("own.choice").await;
    app.users
        .clone()
        .update_user_profile(as_user(
            &user_context(&own),
            profile(&own, 1, Some("Asia/Tokyo"), Some("zh-CN")),
        ))
        .await
        .unwrap();

    let admin = app.member("admin").await;
    let admin = admin_context(&admin);
    let settings = app
        .users
        .clone()
        .get_org_settings(as_user(&admin, pb::GetOrgSettingsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            settings.default_time_zone.as_str(),
            settings.default_locale.as_str(),
            settings.version
        ),
        ("Europe/Berlin", "en", 1),
        "from org.* in the configuration"
    );
    assert_eq!(
        get(&app, &follower.id).await.effective_time_zone,
        "Europe/Berlin"
    );

    // Bad values, each named; a default cannot be cleared.
    let err = app
        .users
        .clone()
        .update_org_settings(as_user(
            &admin,
            pb::UpdateOrgSettingsRequest {
                expected_version: 1,
                default_time_zone: Some("Europe/Berlinn".into()),
                default_locale: Some(String::new()),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        ["default_time_zone", "default_locale"]
    );

    let updated = app
        .users
        .clone()
        .update_org_settings(as_user(
            &admin,
            pb::UpdateOrgSettingsRequest {
                expected_version: 1,
                default_time_zone: Some("Asia/Shanghai".into()),
                default_locale: Some("zh-cn".into()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            updated.default_time_zone.as_str(),
            updated.default_locale.as_str(),
            updated.version
        ),
        ("Asia/Shanghai", "zh-CN", 2)
    );
    // A second writer that read version 1 loses.
    let err = app
        .users
        .clone()
        .update_org_settings(as_user(
            &admin,
            pb::UpdateOrgSettingsRequest {
                expected_version: 1,
                default_time_zone: Some("UTC".into()),
                default_locale: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        crm_errors::ApiError::from_status(&err).code,
        crm_errors::Code::VersionConflict
    );

    // Users without their own values follow; users with them keep theirs.
    let follower = get(&app, &follower.id).await;
    assert_eq!(
        (
            follower.effective_time_zone.as_str(),
            follower.effective_locale.as_str()
        ),
        ("Asia/Shanghai", "zh-CN")
    );
    let own = get(&app, &own.id).await;
    assert_eq!(
        (
            own.effective_time_zone.as_str(),
            own.effective_locale.as_str()
        ),
        ("Asia/Tokyo", "zh-CN")
    );

    // A user without organisation grants may neither read nor change them.
    let nobody = user_context(&follower);
    let err = app
        .users
        .clone()
        .get_org_settings(as_user(&nobody, pb::GetOrgSettingsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .users
        .clone()
        .update_org_settings(as_user(
            &nobody,
            pb::UpdateOrgSettingsRequest {
                expected_version: 2,
                default_time_zone: Some("UTC".into()),
                default_locale: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // The change is an event, with what changed and who changed it.
    let events =
        crm_testkit::collect_events(&app.brokers, &app.topic, 5, Duration::from_secs(60)).await;
    let changed = &events
        .iter()
        .find(|(e, _)| e.event_type == "permission.organisation.settings_updated")
        .expect("a settings_updated event")
        .0;
    assert_eq!(changed.data["version"], 2);
    assert_eq!(
        changed.data["changes"],
        serde_json::json!({
            "default_time_zone": {"old": "Europe/Berlin", "new": "Asia/Shanghai"},
            "default_locale": {"old": "en", "new": "zh-CN"},
        })
    );
    assert_eq!(changed.data["actor"]["user_id"], admin.user_id.to_string());
    app.shutdown().await;
}
