//! Declaring a service's resources and their fields to the registry the permission service
//! keeps, so that field rules, masks, sharing conditions and the audit view can name any field
//! of any resource — and refuse names that exist nowhere — without the permission service
//! knowing other services' records in code.
//!
//! An owning service declares at every start: it enqueues [`Declaration::event`] in its outbox
//! (type `<owner>.resources.declared`, [`DECLARED`]); the permission service, which follows
//! every service's topic, upserts what it says. A declaration is the owner's whole truth about
//! its resources' built-in fields: a field it no longer lists is kept (rules naming it go on
//! working) but marked inactive. Custom fields, defined at run time, join the same registry.

use std::time::Duration;

use crm_access::Resource;
use crm_events::outbox::{NewEvent, Outbox};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::Table;
use crate::field::FieldKind;

/// The verb of the declaration event: `<owner>.resources.declared`.
pub const DECLARED: &str = "resources.declared";

/// What an owning service declares: its name and its resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    /// The declaring service (`customer`).
    pub owner: String,
    pub resources: Vec<DeclaredResource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredResource {
    pub name: String,
    pub fields: Vec<DeclaredField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredField {
    pub name: String,
    /// [`FieldKind::as_str`].
    pub kind: String,
    /// Whether field rules may hide or mask it.
    pub governed: bool,
    /// Whether a sharing rule's condition may test it.
    pub condition: bool,
    /// Defined at run time (`custom.<key>`, crm-fields) rather than built in.
    #[serde(default)]
    pub custom: bool,
}

impl Declaration {
    /// The declaration of `owner`'s resources, each with its table's built-in fields.
    pub fn new(owner: &str, resources: &[(Resource, &Table)]) -> Self {
        Declaration {
            owner: owner.to_string(),
            resources: resources
                .iter()
                .map(|(resource, table)| DeclaredResource {
                    name: resource.as_str().to_string(),
                    fields: table
                        .fields
                        .iter()
                        .map(|f| DeclaredField {
                            name: f.name().to_string(),
                            kind: f.kind().as_str().to_string(),
                            governed: f.governed(),
                            condition: table.condition_columns.contains(&f.name()),
                            custom: false,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The event type: `<owner>.resources.declared`.
    pub fn event_type(&self) -> String {
        format!("{}.{DECLARED}", self.owner)
    }

    /// Whether `event_type` is a declaration's.
    pub fn is_declaration(event_type: &str) -> bool {
        event_type
            .strip_suffix(DECLARED)
            .is_some_and(|owner| owner.ends_with('.'))
    }

    /// What is wrong with it, if anything: names that cannot be names, unknown kinds, fields
    /// listed twice. One message per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for r in &self.resources {
            if !Resource::is_valid_name(&r.name) {
                problems.push(format!("resource {:?} is not a valid name", r.name));
            }
            let mut seen = std::collections::BTreeSet::new();
            for f in &r.fields {
                if !valid_field_name(&f.name) {
                    problems.push(format!("{}.{:?} is not a valid field name", r.name, f.name));
                }
                if FieldKind::parse(&f.kind).is_none() {
                    problems.push(format!("{}.{}: unknown kind {:?}", r.name, f.name, f.kind));
                }
                if !seen.insert(&f.name) {
                    problems.push(format!("{}.{} is declared twice", r.name, f.name));
                }
            }
        }
        problems
    }
}

/// Enqueues `declaration` in the owner's outbox inside `tx` (at start, and whenever custom
/// fields change: each declaration is the owner's whole truth).
pub async fn enqueue(
    tx: &mut sqlx::PgConnection,
    outbox: &Outbox,
    declaration: &Declaration,
) -> Result<(), crm_events::EventError> {
    outbox
        .enqueue(
            tx,
            NewEvent {
                event_type: declaration.event_type(),
                subject: declaration.owner.clone(),
                data: serde_json::to_value(declaration)?,
            },
        )
        .await?;
    Ok(())
}

/// Enqueues `declaration` in the owner's outbox, retrying until it is stored: the owner's
/// start-up work (`crm_host::Host::warm_up`), so a service is never ready with its resources
/// undeclared. The relay publishes it like any event.
pub async fn declare_at_start(pool: PgPool, outbox: Outbox, declaration: Declaration) {
    declare_at_start_with(pool, outbox, async move |_| {
        Ok::<_, std::convert::Infallible>(declaration.clone())
    })
    .await
}

/// [`declare_at_start`] for an owner whose declaration is partly data (custom fields): `make`
/// builds it in the transaction that enqueues it.
pub async fn declare_at_start_with<E: std::fmt::Display>(
    pool: PgPool,
    outbox: Outbox,
    make: impl AsyncFn(&mut sqlx::PgConnection) -> Result<Declaration, E>,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
            let declaration = make(&mut tx).await.map_err(|e| e.to_string())?;
            enqueue(&mut tx, &outbox, &declaration)
                .await
                .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())?;
            outbox.notify_committed();
            Ok::<_, String>(declaration.owner)
        };
        match attempt.await {
            Ok(owner) => {
                tracing::info!(%owner, "resources declared");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot declare the resources yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// `[a-z][a-z0-9_]*`, at most 64 bytes: how services name fields (JSON keys, columns); a custom
/// field is `custom.<such a name>`.
pub fn valid_field_name(name: &str) -> bool {
    let plain = |name: &str| {
        let b = name.as_bytes();
        (1..=64).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
    };
    match name.strip_prefix("custom.") {
        Some(key) => plain(key),
        None => plain(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{Field, system};

    static TABLE: Table = Table {
        name: "quotes",
        name_column: "title",
        time_column: None,
        search: &["title"],
        condition_columns: &["stage"],
        fields: &[
            system::ID,
            Field::new("title", FieldKind::Text),
            Field::new("stage", FieldKind::Choice),
            Field::new("phone", FieldKind::Phone),
        ],
    };

    #[test]
    fn a_declaration_lists_every_field_with_what_rules_may_do_with_it() {
        let quote = Resource::named("quote");
        let d = Declaration::new("sales", &[(quote, &TABLE)]);
        assert_eq!(d.event_type(), "sales.resources.declared");
        assert!(Declaration::is_declaration(&d.event_type()));
        assert!(!Declaration::is_declaration("sales.quote.created"));
        assert!(!Declaration::is_declaration("resources.declared"));
        let fields = &d.resources[0].fields;
        assert_eq!(d.resources[0].name, "quote");
        assert_eq!(fields.len(), 4);
        assert!(!fields[0].governed, "ids are not governed");
        assert!(fields[2].condition && !fields[1].condition);
        assert_eq!(fields[3].kind, "phone");
        assert!(d.problems().is_empty());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(serde_json::from_value::<Declaration>(json).unwrap(), d);
    }

    #[test]
    fn malformed_declarations_say_what_is_wrong() {
        let mut d = Declaration::new("sales", &[(Resource::named("quote"), &TABLE)]);
        d.resources[0].fields[1].kind = "blob".into();
        d.resources[0].fields[2].name = "Stage".into();
        let twice = d.resources[0].fields[3].clone();
        d.resources[0].fields.push(twice);
        d.resources.push(DeclaredResource {
            name: "X".into(),
            fields: vec![],
        });
        let problems = d.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        for kind in FieldKind::ALL {
            assert_eq!(FieldKind::parse(kind.as_str()), Some(*kind));
        }
    }
}
