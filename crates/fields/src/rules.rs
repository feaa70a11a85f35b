//! Validation rules across fields (issue 11, section 1): per entity, written in the condition
//! language, each with a message in Chinese and English — "close date is required when the
//! status is active" is the rule `lifecycle_status = 'active' and custom.close_date is empty`
//! with that message on `custom.close_date`.
//!
//! A rule's condition describes what is **wrong**: a write whose resulting record matches it is
//! refused, with the rule's message (in the caller's language) at the rule's field, in the same
//! shape as any other violation. Rules are checked by the owning service in the write's
//! transaction, against the whole record as it would be stored (fields the caller cannot see
//! included: a rule is the organisation's, not the caller's), with relative dates in the
//! caller's time zone.

use chrono::{DateTime, Utc};
use crm_access::{Access, Action, Locale, Scope};
use crm_condition::Condition;
use crm_errors::validation::Violations;
use crm_errors::{ApiError, Code, FieldViolation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::definition::{Labels, is_valid_key};
use crate::filter::RecordFields;
use crate::service::{CUSTOMIZATION, CustomFields, Entity};
use crate::values::Schema;
use crate::{Result, store};

/// The most rules one entity may have: each runs on every write.
pub const MAX_RULES: usize = 100;
/// Longest message.
pub const MAX_MESSAGE: usize = 300;

/// A validation rule as defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationRule {
    pub id: Uuid,
    pub entity: String,
    /// `[a-z][a-z0-9_]*`: how administrators and the audit trail name it.
    pub key: String,
    /// When a record matches it, the write is refused.
    pub condition: String,
    pub message: Labels,
    /// The field the violation is reported at; `None`: the record as a whole (`record`).
    pub field: Option<String>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an administrator sends to define a rule, or (all parts optional) to change one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleInput {
    pub key: String,
    pub condition: Option<String>,
    pub message: Option<Labels>,
    /// `Some(None)`: the record as a whole.
    pub field: Option<Option<String>>,
    pub active: Option<bool>,
}

impl ValidationRule {
    /// The path violations of this rule are reported at.
    pub fn path(&self) -> &str {
        self.field.as_deref().unwrap_or("record")
    }

    /// The message in `locale`, else in the other language.
    pub fn message_in(&self, locale: Locale) -> &str {
        let (first, second) = match locale {
            Locale::ZhCn => (&self.message.zh, &self.message.en),
            Locale::En => (&self.message.en, &self.message.zh),
        };
        if first.is_empty() { second } else { first }
    }
}

/// Checks a rule against the entity's fields: the condition must type (every field known, every
/// value of its field's type), the field must exist. Errors at `condition` carry the position.
fn check(rule: &mut ValidationRule, entity: Entity, custom: &Schema, v: &mut Violations) {
    rule.message = Labels {
        zh: v
            .text("message.zh", &rule.message.zh, MAX_MESSAGE)
            .unwrap_or_default(),
        en: v
            .text("message.en", &rule.message.en, MAX_MESSAGE)
            .unwrap_or_default(),
    };
    if rule.message.zh.is_empty() && rule.message.en.is_empty() {
        v.add(
            "message",
            "give a message in Chinese (zh), English (en) or both",
        );
    }
    let everything = Scope::everything();
    let fields = RecordFields {
        table: entity.table,
        custom,
        scope: &everything,
    };
    if let Err(e) = crm_condition::compile(&rule.condition, &fields, chrono_tz::UTC, Utc::now()) {
        v.add("condition", e.to_string());
    }
    if let Some(field) = &rule.field {
        let known = match field.strip_prefix("custom.") {
            Some(key) => custom.get(key).is_some_and(|d| d.active),
            None => entity.table.field(field).is_some(),
        };
        if !known {
            v.add("field", format!("{} has no field {field:?}", rule.entity));
        }
    }
}

/// The use cases of validation rules, over one service's custom fields (their entities, pool and
/// outbox).
#[derive(Clone)]
pub struct ValidationRules {
    fields: CustomFields,
}

impl ValidationRules {
    pub fn new(fields: CustomFields) -> Self {
        Self { fields }
    }

    fn entity(&self, name: &str) -> Result<Entity> {
        self.fields.entity(name)
    }

    fn pool(&self) -> &sqlx::PgPool {
        self.fields.pool()
    }

    fn committed(&self) {
        self.fields.outbox().notify_committed();
    }

    /// The rules of `entity` (for holders of the customization grant).
    pub async fn list(&self, access: &Access, entity: &str) -> Result<Vec<ValidationRule>> {
        self.entity(entity)?;
        access.scope(CUSTOMIZATION, Action::Read)?;
        let mut conn = self.pool().acquire().await?;
        store::rules(&mut conn, entity).await
    }

    /// Defines a rule (its key new to the entity).
    pub async fn create(
        &self,
        access: &Access,
        entity: &str,
        input: RuleInput,
    ) -> Result<ValidationRule> {
        let e = self.entity(entity)?;
        access.scope(CUSTOMIZATION, Action::Create)?;
        let mut v = Violations::default();
        if !is_valid_key(input.key.trim()) {
            v.add(
                "key",
                "must be lower-case letters, digits and _, starting with a letter, at most 40 characters",
            );
        }
        if input
            .condition
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
        {
            v.add("condition", "is required");
        }
        let now = crm_record::now();
        let mut rule = ValidationRule {
            id: Uuid::now_v7(),
            entity: entity.to_string(),
            key: input.key.trim().to_string(),
            condition: input.condition.unwrap_or_default(),
            message: input.message.unwrap_or_default(),
            field: input.field.flatten(),
            active: input.active.unwrap_or(true),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.pool().begin().await?;
        store::lock_entity(&mut tx, entity).await?;
        let custom = store::schema(&mut tx, entity).await?;
        if v.is_empty() {
            check(&mut rule, e, &custom, &mut v);
        }
        v.into_result()?;
        let existing = store::rules(&mut tx, entity).await?;
        if existing.iter().any(|r| r.key == rule.key) {
            return Err(ApiError::new(
                Code::AlreadyExists,
                format!("{entity} has a validation rule {:?}", rule.key),
            )
            .into());
        }
        if existing.len() >= MAX_RULES {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                format!("{entity} already has {MAX_RULES} validation rules"),
            )
            .into());
        }
        store::insert_rule(&mut tx, &rule).await?;
        self.fields
            .config_event(
                &mut tx,
                access,
                ("validation_rule", "defined"),
                rule.id,
                &rule,
                Map::new(),
            )
            .await?;
        tx.commit().await?;
        self.committed();
        Ok(rule)
    }

    /// Changes a rule at `expected_version`.
    pub async fn update(
        &self,
        access: &Access,
        entity: &str,
        expected_version: i64,
        input: RuleInput,
    ) -> Result<ValidationRule> {
        let e = self.entity(entity)?;
        access.scope(CUSTOMIZATION, Action::Update)?;
        let mut tx = self.pool().begin().await?;
        let current = store::rule(&mut tx, entity, &input.key, true)
            .await?
            .ok_or_else(|| rule_not_found(entity, &input.key))?;
        ApiError::check_version(expected_version, current.version)?;
        let mut next = current.clone();
        if let Some(condition) = input.condition {
            next.condition = condition;
        }
        if let Some(message) = input.message {
            next.message = message;
        }
        if let Some(field) = input.field {
            next.field = field;
        }
        if let Some(active) = input.active {
            next.active = active;
        }
        let custom = store::schema(&mut tx, entity).await?;
        let mut v = Violations::default();
        check(&mut next, e, &custom, &mut v);
        v.into_result()?;
        if next == current {
            return Ok(current);
        }
        let changes = crate::service::diff(&current, &next);
        next.version = current.version + 1;
        next.updated_at = crm_record::now();
        store::update_rule(&mut tx, &next).await?;
        self.fields
            .config_event(
                &mut tx,
                access,
                ("validation_rule", "changed"),
                next.id,
                &next,
                Map::from_iter([("changes".to_string(), Value::Object(changes))]),
            )
            .await?;
        tx.commit().await?;
        self.committed();
        Ok(next)
    }

    /// Deletes a rule (its definition stays in the audit trail).
    pub async fn delete(
        &self,
        access: &Access,
        entity: &str,
        key: &str,
        expected_version: Option<i64>,
    ) -> Result<()> {
        self.entity(entity)?;
        access.scope(CUSTOMIZATION, Action::Delete)?;
        let mut tx = self.pool().begin().await?;
        let current = store::rule(&mut tx, entity, key, true)
            .await?
            .ok_or_else(|| rule_not_found(entity, key))?;
        if let Some(expected) = expected_version {
            ApiError::check_version(expected, current.version)?;
        }
        store::delete_rule(&mut tx, current.id).await?;
        self.fields
            .config_event(
                &mut tx,
                access,
                ("validation_rule", "deleted"),
                current.id,
                &current,
                Map::new(),
            )
            .await?;
        tx.commit().await?;
        self.committed();
        Ok(())
    }

    /// Refuses a write whose resulting record (`record`, its JSON with custom values under
    /// `custom`) matches an active rule of `entity`: one violation per rule, at its field, in
    /// the caller's language. In the write's transaction.
    pub async fn enforce(
        &self,
        tx: &mut PgConnection,
        access: &Access,
        entity: Entity,
        custom: &Schema,
        record: &Value,
    ) -> Result<()> {
        let rules = store::rules(tx, entity.resource.as_str()).await?;
        let everything = Scope::everything();
        let fields = RecordFields {
            table: entity.table,
            custom,
            scope: &everything,
        };
        let now = crm_record::now();
        let mut violations = Vec::new();
        for rule in rules.iter().filter(|r| r.active) {
            // A rule that no longer types (a field it names was deactivated) cannot hold: it is
            // skipped, and the impact list of a deactivation names it (issue 11, section 4).
            let condition: Condition = match crm_condition::compile(
                &rule.condition,
                &fields,
                access.time_zone(),
                now,
            ) {
                Ok(c) => c,
                Err(err) => {
                    tracing::warn!(rule = %rule.key, error = %err, "validation rule no longer applies");
                    continue;
                }
            };
            if condition.matches(record) {
                violations.push(FieldViolation::new(
                    rule.path(),
                    rule.message_in(access.locale()),
                ));
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(violations).into())
        }
    }
}

fn rule_not_found(entity: &str, key: &str) -> crate::Error {
    ApiError::not_found(&format!("validation rule {entity}.{key}")).into()
}
