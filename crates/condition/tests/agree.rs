//! SQL and memory agree (ADR 0017): generated records go into a real Postgres table with a column
//! of every kind and a `custom jsonb`; generated conditions of every form, as text, go through
//! `compile`; the ids `push_sql` selects must be exactly the ids whose JSON `matches`.
//!
//! Deterministic: one xorshift generator from a constant seed, so a failure names the seed and
//! case that reproduce it (`CRM_CONDITION_SEED=<hex>` runs another seed). The session's time
//! zone is set to an odd one (+13:45) so nothing in the SQL may depend on it.

use std::fmt::Write as _;

use chrono::{DateTime, Days, NaiveDate, SecondsFormat, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use crm_condition::{Column, Condition, FieldType, Kind, Lookup, compile};
use serde_json::{Value as Json, json};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

const SEED: u64 = 0x5eed_2026_0331_c0de;
const RECORDS: usize = 300;
const CONDITIONS: usize = 4000;

/// xorshift64*: tiny, deterministic, good enough to pick test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const GRADES: [&str; 4] = ["A", "B", "C", "制造"];
const COLORS: [&str; 4] = ["red", "green", "blue", "深蓝"];
const REGIONS: [&str; 3] = ["north", "south", "华东"];
const LANGS: [&str; 3] = ["en", "zh", "fr"];

/// Text that tells the back ends apart if anything is off: case (ASCII and not), quotes, LIKE's
/// metacharacters, Chinese, letters whose Unicode lower case is special (İ, ß, Σ), emoji, the
/// highest code point, the empty string.
const TEXTS: &[&str] = &[
    "Acme",
    "acme",
    "ACME Corp",
    "acme corp",
    "O'Brien",
    "o'brien",
    "100%",
    "100% sure",
    "a_b",
    "aXb",
    "a\\b",
    "a%b_c",
    "制造",
    "上海制造业",
    "制造业",
    "Zoë",
    "ZOË",
    "ÉCOLE",
    "école",
    "İstanbul",
    "istanbul",
    "STRASSE",
    "straße",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    "ǅemal",
    "🙂 smile",
    "",
    " ",
    "z",
    "Z",
    "a",
    "ab",
    "b",
    "\u{7f}",
    "\u{80}",
    "\u{ffff}",
    "\u{10ffff}",
    "'",
    "%",
    "_",
];

const NEEDLES: &[&str] = &[
    "acme", "ACME", "Acme c", "%", "_", "\\", "制造", "'", "é", "É", "", "a_b", "o'b", "O'B", "ß",
    "SS", "σ", "Σ", "i", "I", "🙂", "b", "100%", "z",
];

const CHARS: &[char] = &[
    'a', 'A', 'b', 'B', 'z', '%', '_', '\\', '\'', ' ', 'é', 'É', '制', '造', 'ß', 'İ', 'Σ', 'σ',
    'ς', '🙂', '0', '9', '-',
];

const DECIMALS: &[&str] = &[
    "0",
    "0.00",
    "-0.01",
    "12.5",
    "12.50",
    "12.49",
    "12.51",
    "99999999999999999999.9999",
    "-99999999999999999999.9999",
    "0.0000000001",
    "1",
    "-1",
    "79228162514264337593543950335",
];

const INTEGERS: &[i64] = &[0, 1, -1, 42, 1000, i64::MIN, i64::MIN + 1, i64::MAX];

fn text(rng: &mut Rng) -> String {
    if rng.chance(60) {
        return rng.pick(TEXTS).to_string();
    }
    (0..rng.below(6)).map(|_| *rng.pick(CHARS)).collect()
}

fn decimal(rng: &mut Rng) -> String {
    if rng.chance(60) {
        return rng.pick(DECIMALS).to_string();
    }
    let scale = rng.below(4);
    let whole = rng.range(-200, 200);
    if scale == 0 {
        whole.to_string()
    } else {
        let frac = rng.below(10usize.pow(scale as u32));
        let sign = if whole == 0 && rng.chance(50) {
            "-"
        } else {
            ""
        };
        format!("{sign}{whole}.{frac:0width$}", width = scale)
    }
}

fn integer(rng: &mut Rng) -> i64 {
    if rng.chance(40) {
        *rng.pick(INTEGERS)
    } else {
        rng.range(-100, 100)
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Around the generated `now`s, with the days periods begin and end on, and the calendar's ends.
fn date(rng: &mut Rng, extremes: bool) -> NaiveDate {
    let special = [
        ymd(2026, 3, 1),
        ymd(2026, 3, 29),
        ymd(2026, 3, 30),
        ymd(2026, 3, 31),
        ymd(2026, 4, 1),
        ymd(2026, 2, 28),
        ymd(2025, 12, 31),
        ymd(2026, 1, 1),
        ymd(2025, 10, 1),
        ymd(2026, 6, 30),
        ymd(2026, 7, 1),
    ];
    if extremes && rng.chance(5) {
        return *rng.pick(&[ymd(1, 1, 1), ymd(9999, 12, 31)]);
    }
    if rng.chance(50) {
        return *rng.pick(&special);
    }
    ymd(2025, 9, 1) + Days::new(rng.below(400) as u64)
}

const ZONES: [Tz; 4] = [
    chrono_tz::UTC,
    chrono_tz::Asia::Shanghai,
    chrono_tz::America::New_York,
    chrono_tz::Europe::London,
];

/// Instants on and next to the zones' local midnights (one microsecond either side), and
/// anywhere in between.
fn instant(rng: &mut Rng) -> DateTime<Utc> {
    let day = date(rng, false);
    if rng.chance(60) {
        let zone = rng.pick(&ZONES);
        let midnight = zone
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .to_utc();
        return midnight + TimeDelta::microseconds(rng.range(-1, 1));
    }
    let at = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap());
    at + TimeDelta::microseconds(rng.range(0, 86_400_000_000 - 1))
}

fn fixed(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn owners() -> [Uuid; 4] {
    [
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
        Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0002),
        Uuid::from_u128(0xffff_ffff_ffff_4fff_bfff_ffff_ffff_ffff),
        Uuid::nil(),
    ]
}

fn list(rng: &mut Rng, from: &[&str], free: bool) -> Vec<String> {
    (0..rng.below(4))
        .map(|_| {
            if free && rng.chance(50) {
                text(rng)
            } else {
                rng.pick(from).to_string()
            }
        })
        .collect()
}

/// One generated row, as bound into the table.
struct Row {
    id: i64,
    name: Option<String>,
    grade: Option<String>,
    age: Option<i64>,
    amount: Option<String>,
    vip: Option<bool>,
    born: Option<NaiveDate>,
    seen_at: Option<DateTime<Utc>>,
    tags: Option<Vec<String>>,
    colors: Option<Vec<String>>,
    owner: Option<Uuid>,
    custom: Option<Json>,
}

fn row(rng: &mut Rng, id: i64) -> Row {
    fn some<T>(rng: &mut Rng, f: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        if rng.chance(15) { None } else { Some(f(rng)) }
    }
    let mut custom = serde_json::Map::new();
    let mut put = |rng: &mut Rng, key: &str, f: &dyn Fn(&mut Rng) -> Json| match rng.below(10) {
        0 | 1 => {}
        2 => {
            custom.insert(key.into(), Json::Null);
        }
        _ => {
            custom.insert(key.into(), f(rng));
        }
    };
    put(rng, "note", &|r| json!(text(r)));
    put(rng, "region", &|r| json!(r.pick(&REGIONS)));
    put(rng, "score", &|r| json!(integer(r)));
    put(rng, "price", &|r| json!(decimal(r)));
    put(rng, "ok", &|r| json!(r.chance(50)));
    put(rng, "day", &|r| {
        json!(date(r, true).format("%Y-%m-%d").to_string())
    });
    put(rng, "at", &|r| json!(fixed(instant(r))));
    put(rng, "labels", &|r| json!(list(r, TEXTS, true)));
    put(rng, "langs", &|r| json!(list(r, &LANGS, false)));
    put(rng, "ref", &|r| json!(r.pick(&owners()).to_string()));
    let custom = (!rng.chance(5)).then_some(Json::Object(custom));
    Row {
        id,
        name: some(rng, text),
        grade: some(rng, |r| r.pick(&GRADES).to_string()),
        age: some(rng, integer),
        amount: some(rng, decimal),
        vip: some(rng, |r| r.chance(50)),
        born: some(rng, |r| date(r, true)),
        seen_at: some(rng, instant),
        tags: some(rng, |r| list(r, TEXTS, true)),
        colors: some(rng, |r| list(r, &COLORS, false)),
        owner: some(rng, |r| *r.pick(&owners())),
        custom,
    }
}

fn schema(name: &str) -> Lookup {
    let builtin = |kind, column| {
        Lookup::Found(FieldType {
            kind,
            column: Column::Builtin(column),
        })
    };
    let custom = |kind, key: &str| {
        Lookup::Found(FieldType {
            kind,
            column: Column::Custom(key.into()),
        })
    };
    let options = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match name {
        "name" => builtin(Kind::Text, "name"),
        "grade" => builtin(Kind::Choice(options(&GRADES)), "grade"),
        "age" => builtin(Kind::Integer, "age"),
        "amount" => builtin(Kind::Decimal, "amount"),
        "vip" => builtin(Kind::Bool, "vip"),
        "born" => builtin(Kind::Date, "born"),
        "seen_at" => builtin(Kind::DateTime, "seen_at"),
        "tags" => builtin(Kind::TextList, "tags"),
        "colors" => builtin(Kind::MultiChoice(options(&COLORS)), "colors"),
        "owner" => builtin(Kind::Reference, "owner"),
        "custom.note" => custom(Kind::Text, "note"),
        "custom.region" => custom(Kind::Choice(options(&REGIONS)), "region"),
        "custom.score" => custom(Kind::Integer, "score"),
        "custom.price" => custom(Kind::Decimal, "price"),
        "custom.ok" => custom(Kind::Bool, "ok"),
        "custom.day" => custom(Kind::Date, "day"),
        "custom.at" => custom(Kind::DateTime, "at"),
        "custom.labels" => custom(Kind::TextList, "labels"),
        "custom.langs" => custom(Kind::MultiChoice(options(&LANGS)), "langs"),
        "custom.ref" => custom(Kind::Reference, "ref"),
        _ => Lookup::Unknown,
    }
}

const FIELDS: &[&str] = &[
    "name",
    "grade",
    "age",
    "amount",
    "vip",
    "born",
    "seen_at",
    "tags",
    "colors",
    "owner",
    "custom.note",
    "custom.region",
    "custom.score",
    "custom.price",
    "custom.ok",
    "custom.day",
    "custom.at",
    "custom.labels",
    "custom.langs",
    "custom.ref",
];

fn quoted(s: impl AsRef<str>) -> String {
    format!("'{}'", s.as_ref().replace('\'', "''"))
}

fn relative(rng: &mut Rng) -> String {
    let periods = [
        "this_week",
        "this_month",
        "this_quarter",
        "this_year",
        "last_week",
        "LAST_MONTH",
        "last_quarter",
        "last_year",
    ];
    if rng.chance(50) {
        return rng.pick(&periods).to_string();
    }
    match rng.below(3) {
        0 => "today".into(),
        _ => format!(
            "today {} {}{}",
            rng.pick(&["+", "-"]),
            rng.below(40),
            rng.pick(&["d", "w", "m"])
        ),
    }
}

/// A value literal for `field`, of its kind.
fn literal(rng: &mut Rng, kind: &Kind) -> String {
    match kind {
        Kind::Text => quoted(text(rng)),
        Kind::Choice(options) | Kind::MultiChoice(options) => quoted(rng.pick(options)),
        Kind::TextList => quoted(text(rng)),
        Kind::Integer => integer(rng).to_string(),
        Kind::Decimal if rng.chance(20) => integer(rng).to_string(),
        Kind::Decimal => decimal(rng),
        Kind::Bool => rng.pick(&["true", "false", "TRUE"]).to_string(),
        Kind::Reference => {
            let id = *rng.pick(&owners());
            quoted(if rng.chance(20) {
                id.to_string().to_uppercase()
            } else {
                id.to_string()
            })
        }
        Kind::Date => match rng.below(3) {
            0 => relative(rng),
            _ => quoted(date(rng, true).format("%Y-%m-%d").to_string()),
        },
        Kind::DateTime => match rng.below(4) {
            0 => relative(rng),
            1 => quoted(date(rng, false).format("%Y-%m-%d").to_string()),
            2 => {
                let at = instant(rng);
                let zone = rng.pick(&ZONES);
                quoted(
                    at.with_timezone(zone)
                        .to_rfc3339_opts(SecondsFormat::AutoSi, true),
                )
            }
            _ => quoted(at_z(instant(rng))),
        },
    }
}

fn at_z(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn comparison(rng: &mut Rng) -> String {
    let field = *rng.pick(FIELDS);
    let Lookup::Found(ft) = schema(field) else {
        unreachable!()
    };
    let kind = &ft.kind;
    let shown = field;
    let list = matches!(kind, Kind::TextList | Kind::MultiChoice(_));
    let ordered = matches!(
        kind,
        Kind::Text | Kind::Integer | Kind::Decimal | Kind::Date | Kind::DateTime
    );
    let empty = if rng.chance(50) {
        "is empty"
    } else {
        "IS NOT EMPTY"
    };
    let in_list = |rng: &mut Rng| {
        let values: Vec<String> = (0..1 + rng.below(3)).map(|_| literal(rng, kind)).collect();
        format!("{shown} in ({})", values.join(", "))
    };
    if rng.chance(12) {
        return format!("{shown} {empty}");
    }
    if list {
        return match rng.below(2) {
            0 => {
                let needle = match kind {
                    Kind::MultiChoice(_) => literal(rng, kind),
                    _ if rng.chance(50) => quoted(rng.pick(TEXTS)),
                    _ => literal(rng, kind),
                };
                format!("{shown} contains {needle}")
            }
            _ => in_list(rng),
        };
    }
    match rng.below(10) {
        0 | 1 => in_list(rng),
        2 if ordered => format!(
            "{shown} between {} and {}",
            literal(rng, kind),
            literal(rng, kind)
        ),
        3 | 4 if *kind == Kind::Text => {
            let needle = if rng.chance(70) {
                rng.pick(NEEDLES).to_string()
            } else {
                text(rng)
            };
            format!("{shown} contains {}", quoted(needle))
        }
        _ => {
            let ops: &[&str] = if ordered {
                &["=", "!=", "<", "<=", ">", ">="]
            } else {
                &["=", "!="]
            };
            format!("{shown} {} {}", rng.pick(ops), literal(rng, kind))
        }
    }
}

fn condition(rng: &mut Rng, depth: usize) -> String {
    if depth >= 3 || rng.chance(40) {
        return comparison(rng);
    }
    match rng.below(4) {
        0 | 1 => {
            let join = *rng.pick(&[" and ", " or ", " AND ", " Or "]);
            let parts: Vec<String> = (0..2 + rng.below(2))
                .map(|_| format!("({})", condition(rng, depth + 1)))
                .collect();
            parts.join(join)
        }
        2 => format!("not ({})", condition(rng, depth + 1)),
        _ => format!("not {}", comparison(rng)),
    }
}

async fn insert(conn: &mut PgConnection, r: &Row) {
    sqlx::query(
        "INSERT INTO t (id, name, grade, age, amount, vip, born, seen_at, tags, colors, owner, custom)
         VALUES ($1, $2, $3, $4, CAST($5 AS numeric), $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(r.id)
    .bind(&r.name)
    .bind(&r.grade)
    .bind(r.age)
    .bind(&r.amount)
    .bind(r.vip)
    .bind(r.born)
    .bind(r.seen_at)
    .bind(&r.tags)
    .bind(&r.colors)
    .bind(r.owner)
    .bind(&r.custom)
    .execute(&mut *conn)
    .await
    .expect("insert a generated row");
}

#[tokio::test]
async fn sql_and_memory_select_the_same_records() {
    let url = crm_testkit::fresh_db_url().await;
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    // Whatever the session's zone, the SQL must not depend on it.
    sqlx::query("SET TIME ZONE 'Pacific/Chatham'")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE t (
            id bigint PRIMARY KEY,
            name text,
            grade text,
            age bigint,
            amount numeric,
            vip boolean,
            born date,
            seen_at timestamptz,
            tags text[],
            colors text[],
            owner uuid,
            custom jsonb
        )",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    // `CRM_CONDITION_SEED=<hex>` explores other cases; without it, the run is always this one.
    let seed = std::env::var("CRM_CONDITION_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .filter(|s| *s != 0) // xorshift stays at zero
        .unwrap_or(SEED);
    let mut rng = Rng(seed);
    for id in 1..=RECORDS as i64 {
        insert(&mut conn, &row(&mut rng, id)).await;
    }
    // The records as the service would hand them over: Postgres's own JSON of the row, numeric
    // as text (serde_json would read a JSON number as a float).
    let records: Vec<(i64, Json)> = sqlx::query_as(
        "SELECT id, to_jsonb(t) || jsonb_build_object('amount', amount::text) FROM t ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(records.len(), RECORDS);

    let nows = [
        // Already 1 April (a new month and quarter) in Shanghai, still 31 March in New York.
        Utc.with_ymd_and_hms(2026, 3, 31, 17, 30, 0).unwrap(),
        // The morning Europe's clocks go forward.
        Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0).unwrap(),
    ];
    let (mut none, mut all, mut some) = (0, 0, 0);
    for case in 0..CONDITIONS {
        let text = condition(&mut rng, 0);
        let tz = *rng.pick(&ZONES);
        let now = *rng.pick(&nows);
        let cond: Condition = compile(&text, &schema, tz, now).unwrap_or_else(|e| {
            panic!("seed {seed:#x} case {case}: generated condition refused: {text}\n{e:?}")
        });

        let mut b: QueryBuilder<Postgres> = QueryBuilder::new("SELECT id FROM t WHERE ");
        cond.push_sql(&mut b);
        b.push(" ORDER BY id");
        let by_sql: Vec<i64> = b
            .build_query_scalar()
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "seed {seed:#x} case {case}: {text}\nSQL {}\nfailed: {e}",
                    b.sql().as_str()
                )
            });
        let by_memory: Vec<i64> = records
            .iter()
            .filter(|(_, json)| cond.matches(json))
            .map(|(id, _)| *id)
            .collect();

        if by_sql != by_memory {
            let mut report = format!(
                "seed {seed:#x} case {case} (tz {tz}, now {now}): SQL and memory disagree\n\
                 condition: {text}\nSQL: {}\n",
                b.sql().as_str()
            );
            for (id, json) in &records {
                let (s, m) = (by_sql.contains(id), by_memory.contains(id));
                if s != m {
                    let _ = writeln!(report, "id {id}: SQL {s}, memory {m}: {json}");
                }
            }
            panic!("{report}");
        }
        match by_sql.len() {
            0 => none += 1,
            n if n == RECORDS => all += 1,
            _ => some += 1,
        }
    }
    println!("{CONDITIONS} conditions: {some} select some records, {none} none, {all} all");
    // The generator must keep the comparison meaningful: most conditions split the records.
    assert!(
        some * 2 > CONDITIONS,
        "only {some} of {CONDITIONS} conditions split the records ({none} none, {all} all)"
    );
}
