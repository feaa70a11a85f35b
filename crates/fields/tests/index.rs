//! Indexes of custom fields against a real Postgres: built online for fields marked indexed,
//! used by the condition language's SQL, dropped when no longer wanted, rebuilt when a build
//! died half-way (an INVALID index), and built by one replica at a time.

use chrono::Utc;
use crm_access::Resource;
use crm_condition::Schema as _;
use crm_fields::definition::{Labels, NewDefinition};
use crm_fields::filter::RecordFields;
use crm_fields::index::{Indexer, index_name};
use crm_fields::{Definition, Entity, Schema};
use crm_record::Table;
use crm_record::field::system;
use sqlx::PgPool;

static THINGS: Table = Table {
    name: "things",
    name_column: "id",
    time_column: None,
    search: &[],
    condition_columns: &[],
    fields: &[system::ID],
};

static ENTITIES: &[Entity] = &[Entity {
    resource: Resource::named("thing"),
    table: &THINGS,
}];

async fn pool() -> PgPool {
    let pool = PgPool::connect(&crm_testkit::fresh_db_url().await)
        .await
        .expect("the test database");
    crm_db::migrate(&pool, &[&crm_fields::MIGRATOR])
        .await
        .expect("migrate");
    sqlx::query(
        "CREATE TABLE things (id UUID PRIMARY KEY, custom JSONB NOT NULL DEFAULT '{}',
                              deleted_at TIMESTAMPTZ)",
    )
    .execute(&pool)
    .await
    .unwrap();
    // Enough rows that the planner has something to choose between.
    sqlx::query(
        "INSERT INTO things (id, custom)
         SELECT gen_random_uuid(),
                jsonb_build_object('region', 'r' || (n % 100), 'budget', (n % 1000)::text)
           FROM generate_series(1, 20000) n",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE things").execute(&pool).await.unwrap();
    pool
}

fn definition(key: &str, t: &str, indexed: bool) -> Definition {
    NewDefinition {
        key: key.into(),
        field_type: t.into(),
        label: Labels {
            zh: key.into(),
            en: key.into(),
        },
        indexed,
        currency: (t == "currency").then(|| "CNY".into()),
        ..Default::default()
    }
    .check("thing", &[], 0, Utc::now())
    .unwrap()
}

async fn save(pool: &PgPool, d: &Definition) {
    let mut conn = pool.acquire().await.unwrap();
    match crm_fields::store::get(&mut conn, "thing", &d.key, false)
        .await
        .unwrap()
    {
        Some(_) => crm_fields::store::update(&mut conn, d).await.unwrap(),
        None => crm_fields::store::insert(&mut conn, d).await.unwrap(),
    }
}

async fn indexes(pool: &PgPool) -> Vec<(String, bool)> {
    sqlx::query_as(
        "SELECT c.relname::text, i.indisvalid FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
          WHERE t.relname = 'things' AND c.relname LIKE 'cf\\_%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The plan of `filter` over things, as the list SQL runs it.
async fn plan(pool: &PgPool, filter: &str, custom: &Schema) -> String {
    let scope = crm_access::Scope::everything();
    let fields = RecordFields {
        table: &THINGS,
        custom,
        scope: &scope,
    };
    assert!(matches!(
        fields.field("custom.region"),
        crm_condition::Lookup::Found(_)
    ));
    let condition =
        crm_fields::filter::compile(filter, &fields, chrono_tz::UTC, Utc::now()).unwrap();
    let mut b =
        sqlx::QueryBuilder::new("EXPLAIN SELECT id FROM things WHERE deleted_at IS NULL AND ");
    condition.push_sql(&mut b);
    let rows: Vec<String> = b.build_query_scalar().fetch_all(pool).await.unwrap();
    rows.join("\n")
}

#[tokio::test]
async fn indexed_fields_get_their_index_online_and_filters_use_it() {
    let pool = pool().await;
    let indexer = Indexer::new(pool.clone(), ENTITIES);
    let region = definition("region", "text", true);
    let budget = definition("budget", "currency", true);
    let note = definition("note", "text", false);
    for d in [&region, &budget, &note] {
        save(&pool, d).await;
    }
    let pass = indexer.reconcile().await.unwrap();
    assert_eq!(
        pass.built,
        [
            index_name("things", "budget"),
            index_name("things", "region")
        ],
        "in key order"
    );
    assert_eq!(
        indexes(&pool).await,
        [
            ("cf_things_budget".to_string(), true),
            ("cf_things_region".to_string(), true)
        ]
    );
    // Nothing to do the second time.
    assert_eq!(indexer.reconcile().await.unwrap(), Default::default());

    let custom = Schema::new(vec![region.clone(), budget.clone(), note.clone()]);
    let by_region = plan(&pool, "custom.region = 'r7'", &custom).await;
    assert!(by_region.contains("cf_things_region"), "{by_region}");
    let by_budget = plan(
        &pool,
        "custom.budget >= 998 and custom.region = 'r98'",
        &custom,
    )
    .await;
    assert!(by_budget.contains("cf_things_"), "{by_budget}");

    // No longer indexed: dropped.
    let mut plain = region.clone();
    plain.indexed = false;
    save(&pool, &plain).await;
    let pass = indexer.reconcile().await.unwrap();
    assert_eq!(pass.dropped, ["cf_things_region"]);
    assert_eq!(
        indexes(&pool).await,
        [("cf_things_budget".to_string(), true)]
    );
}

#[tokio::test]
async fn a_build_that_died_is_rebuilt_and_one_replica_builds_at_a_time() {
    let pool = pool().await;
    let indexer = Indexer::new(pool.clone(), ENTITIES);
    save(&pool, &definition("region", "text", true)).await;
    // A build that failed half-way leaves an INVALID index under the name (here: a unique
    // build over duplicate values).
    let failed = sqlx::query(
        "CREATE UNIQUE INDEX CONCURRENTLY cf_things_region ON things
             ((custom ->> 'region') COLLATE \"C\") WHERE deleted_at IS NULL",
    )
    .execute(&pool)
    .await;
    assert!(failed.is_err());
    assert_eq!(
        indexes(&pool).await,
        [("cf_things_region".to_string(), false)]
    );

    // Another replica holds the lock: this one looks at nothing.
    let mut other = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtext('custom_fields'), hashtext('indexes'))")
        .execute(&mut *other)
        .await
        .unwrap();
    assert!(indexer.reconcile().await.unwrap().skipped);
    sqlx::query("SELECT pg_advisory_unlock(hashtext('custom_fields'), hashtext('indexes'))")
        .execute(&mut *other)
        .await
        .unwrap();

    let pass = indexer.reconcile().await.unwrap();
    assert_eq!(pass.built, ["cf_things_region"]);
    assert_eq!(
        indexes(&pool).await,
        [("cf_things_region".to_string(), true)]
    );
}
