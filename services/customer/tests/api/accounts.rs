use crm_proto::customer as pb;
use tonic::Code;

use crate::helpers::{OWNER, Options, as_caller, spawn_app, spawn_with, violated_fields};

#[tokio::test]
async fn create_get_update_delete() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let created = app.create_account("Acme Ltd").await;
    assert_eq!(created.version, 1);
    assert_eq!(
        created.lifecycle_status,
        pb::LifecycleStatus::Prospect as i32
    );
    assert_eq!(created.tags, ["vip"]);

    let got = client
        .get_account(pb::GetAccountRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    let updated = client
        .update_account(pb::UpdateAccountRequest {
            id: created.id.clone(),
            expected_version: 1,
            name: Some("Acme Group".into()),
            email: Some(String::new()),
            grade: Some(pb::Grade::A as i32),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.name, "Acme Group");
    assert_eq!(updated.email, "", "an empty string clears the field");
    assert_eq!(updated.grade, pb::Grade::A as i32);

    // The next read sees the write (the cache moved to version 2, no stale read).
    let got = client
        .get_account(pb::GetAccountRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, updated);

    // An update that changes nothing makes no new version.
    let same = client
        .update_account(pb::UpdateAccountRequest {
            id: created.id.clone(),
            expected_version: 2,
            name: Some("Acme Group".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.version, 2);

    let deleted = client
        .delete_account(pb::DeleteAccountRequest {
            id: created.id.clone(),
            expected_version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.version, 3);
    let err = client
        .get_account(pb::GetAccountRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .delete_account(pb::DeleteAccountRequest {
            id: created.id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.shutdown().await;
}

#[tokio::test]
async fn stale_version_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let a = app.create_account("Acme").await;
    client
        .update_account(pb::UpdateAccountRequest {
            id: a.id.clone(),
            expected_version: 1,
            name: Some("B".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = client
        .update_account(pb::UpdateAccountRequest {
            id: a.id.clone(),
            expected_version: 1,
            name: Some("C".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        crm_errors::ApiError::from_status(&err).code,
        crm_errors::Code::VersionConflict
    );
    let err = client
        .delete_account(pb::DeleteAccountRequest {
            id: a.id.clone(),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(
        crm_errors::ApiError::from_status(&err).code,
        crm_errors::Code::VersionConflict
    );
    let got = client
        .get_account(pb::GetAccountRequest { id: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.name.as_str(), got.version), ("B", 2));
    // create + one update: two events, nothing from the refused calls.
    assert_eq!(app.count("event_outbox").await, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_input_names_every_field_and_writes_nothing() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let err = client
        .create_account(pb::CreateAccountRequest {
            name: "x".repeat(201),
            website: "ftp://nope".into(),
            email: "not-an-email".into(),
            phone: "call me".into(),
            owner_id: "not-a-uuid".into(),
            tags: vec!["ok".into(), " ".into()],
            lifecycle_status: 42,
            grade: 9,
            department_id: "nowhere".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "name",
            "website",
            "phone",
            "email",
            "owner_id",
            "department_id",
            "tags[1]",
            "lifecycle_status",
            "grade"
        ]
    );

    let a = app.create_account("Acme").await;
    for (request, field) in [
        (
            pb::UpdateAccountRequest {
                id: "nope".into(),
                expected_version: 1,
                ..Default::default()
            },
            "id",
        ),
        (
            pb::UpdateAccountRequest {
                id: a.id.clone(),
                expected_version: 0,
                ..Default::default()
            },
            "expected_version",
        ),
        (
            pb::UpdateAccountRequest {
                id: a.id.clone(),
                expected_version: 1,
                name: Some("  ".into()),
                ..Default::default()
            },
            "name",
        ),
        (
            pb::UpdateAccountRequest {
                id: a.id.clone(),
                expected_version: 1,
                lifecycle_status: Some(0),
                ..Default::default()
            },
            "lifecycle_status",
        ),
        (
            pb::UpdateAccountRequest {
                id: a.id.clone(),
                expected_version: 1,
                tags: Some(pb::Tags {
                    values: vec!["t".repeat(51)],
                }),
                ..Default::default()
            },
            "tags[0]",
        ),
    ] {
        let err = client.update_account(request).await.unwrap_err();
        assert_eq!(violated_fields(&err), [field]);
    }
    let err = client
        .get_account(pb::GetAccountRequest {
            id: "1; DROP TABLE accounts".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["id"]);

    assert_eq!(app.count("accounts").await, 1);
    assert_eq!(
        app.count("event_outbox").await,
        1,
        "only the one valid create made an event"
    );
    let got = client
        .get_account(pb::GetAccountRequest { id: a.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.version, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn caller_is_the_default_owner() {
    let app = spawn_app().await;
    let caller = "0191d3a0-0000-7000-8000-0000000000aa";
    let request = as_caller(
        &crm_access::Access::system(caller.parse().unwrap()),
        pb::CreateAccountRequest {
            name: "Acme".into(),
            ..Default::default()
        },
    );
    let a = app
        .raw
        .clone()
        .create_account(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.owner_id, caller);
    assert_ne!(a.owner_id, OWNER);
    app.shutdown().await;
}

#[tokio::test]
async fn reads_keep_working_without_redis() {
    // Nothing listens on port 1: every cache call fails fast and the service reads Postgres.
    let app = spawn_with(Options {
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..Default::default()
    })
    .await;
    let mut client = app.client.clone();
    let a = app.create_account("Acme").await;
    let got = client
        .get_account(pb::GetAccountRequest { id: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, a);
    let updated = client
        .update_account(pb::UpdateAccountRequest {
            id: a.id.clone(),
            expected_version: 1,
            name: Some("B".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got = client
        .get_account(pb::GetAccountRequest { id: a.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, updated);
    app.shutdown().await;
}

#[tokio::test]
async fn cache_holds_the_latest_version_and_tombstones() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let a = app.create_account("Acme").await;
    let key = format!(
        "{}:customer:account:{}",
        app.settings.redis.key_prefix, a.id
    );
    let redis_client = redis::Client::open(crm_testkit::redis_url()).unwrap();
    let mut redis = redis_client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let version: i64 = redis::cmd("HGET")
        .arg(&key)
        .arg("v")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(version, 1, "the create stored version 1");

    client
        .update_account(pb::UpdateAccountRequest {
            id: a.id.clone(),
            expected_version: 1,
            name: Some("B".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let version: i64 = redis::cmd("HGET")
        .arg(&key)
        .arg("v")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(version, 2);

    // A slow reader that loaded version 1 before the update must not move the cache back.
    let cache = crm_cache::VersionedCache::new(
        &app.settings.redis,
        "customer",
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    cache
        .put(
            "account",
            &a.id,
            1,
            Some(&serde_json::json!({"stale": true})),
        )
        .await;
    let got = client
        .get_account(pb::GetAccountRequest { id: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.name.as_str(), got.version), ("B", 2));

    client
        .delete_account(pb::DeleteAccountRequest {
            id: a.id.clone(),
            expected_version: 2,
        })
        .await
        .unwrap();
    let data: String = redis::cmd("HGET")
        .arg(&key)
        .arg("d")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(data, "", "deletion leaves a tombstone");
    let err = client
        .get_account(pb::GetAccountRequest { id: a.id })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.shutdown().await;
}

#[tokio::test]
async fn account_with_contacts_cannot_be_deleted() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let a = app.create_account("Acme").await;
    let c = app.create_contact(&a.id, "Ada").await;
    let err = client
        .delete_account(pb::DeleteAccountRequest {
            id: a.id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        crm_errors::ApiError::from_status(&err).code,
        crm_errors::Code::FailedPrecondition
    );
    client
        .delete_contact(pb::DeleteContactRequest {
            id: c.id,
            expected_version: 1,
        })
        .await
        .unwrap();
    client
        .delete_account(pb::DeleteAccountRequest {
            id: a.id,
            expected_version: 1,
        })
        .await
        .unwrap();
    app.shutdown().await;
}

/// A Kubernetes migration Job runs the image with `server.migrate_only`: the schema is made and
/// the process exits by itself, serving nothing.
#[tokio::test]
async fn a_migration_job_migrates_and_exits() {
    let db_url = crm_testkit::fresh_db_url().await;
    let mut server = crm_testkit::server_settings();
    server.migrate_only = true;
    let settings = crm_customer::Settings {
        server,
        identity: crm_testkit::identity::trusting_tests(crm_customer::Settings::default_identity()),
        services: crm_testkit::identity::unreachable_permission(),
        upstream: Default::default(),
        database: crm_testkit::database_settings(db_url.clone()),
        redis: crm_testkit::redis_settings(),
        kafka: crm_testkit::kafka_settings(crm_testkit::kafka_brokers()),
        events: crm_customer::settings::EventsSettings {
            topic: crm_testkit::unique("customer-events"),
        },
        cache: crm_customer::settings::CacheSettings { ttl_secs: 60 },
    };
    let app = crm_customer::Application::build(settings).await.unwrap();
    let grpc_port = app.grpc_port();
    let finished = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        app.run_until_stopped(crm_lifecycle::CancellationToken::new()),
    )
    .await
    .expect("exits by itself");
    finished.expect("a clean exit");
    let db = sqlx::PgPool::connect(&db_url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables
          WHERE table_name IN ('accounts', 'contacts', 'event_outbox')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(tables, 3, "the schema is there");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_err(),
        "nothing is served"
    );
}
