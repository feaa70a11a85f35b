//! # crm-access
//!
//! The caller of an owning service and what they may do there, as the permission service
//! decided it (`crm.permission.v1.AccessContext`): per action, a [`Scope`] of records (a
//! predicate over `owner_id` and `department_id`) and the field rules that go with it.
//!
//! The gateway builds an [`Access`] from `CompileScope` answers and attaches it to every call
//! ([`Access::to_metadata`]); owning services read it back ([`Access::from_metadata`]), refuse
//! actions it carries no scope for, add [`Scope::push_predicate`] to every query (feature `sql`)
//! so lists, counts and exports never hold a row the caller may not see, and pass every value
//! they return through [`Scope::show`] (hidden fields left out, masked ones masked).
//!
//! Why the gateway compiles and services apply (ADR 0009): one `CompileScope` per user, action
//! and permission version, cached in Redis, serves every replica of every service; services
//! walk no trees and call nobody on the request path. The one exception keeps the context
//! bounded (ADR 0016): a scope larger than [`INLINE_SCOPE_LIMIT`] travels by reference, and the
//! receiving service fetches it once per user, action and permission version
//! ([`Access::unresolved`]; `crm_identity::scopes` does it before any handler runs).
//!
//! The context also says in which time zone and language the caller works ([`preferences`],
//! ADR 0014): whatever a service computes about "today", a month, quiet hours or a report period
//! uses [`Access::time_zone`] and [`Access::today`], never the server's clock zone.

use std::collections::BTreeMap;

use crm_errors::{ApiError, Code, FieldViolation};
use crm_proto::permission as pb;
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use uuid::Uuid;

pub mod mask;
pub mod preferences;

pub use preferences::{Locale, Preferences, Tz};

/// The binary metadata entry carrying the protobuf-encoded `AccessContext`.
pub const METADATA_KEY: &str = "crm-access-bin";

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident: $pb:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }

            /// From [`Self::as_str`]'s name.
            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }

            pub fn to_pb(self) -> pb::$pb {
                match self {
                    $($name::$variant => pb::$pb::$variant),+
                }
            }

            /// `None` for UNSPECIFIED and unknown numbers.
            pub fn from_pb(raw: i32) -> Option<Self> {
                match pb::$pb::try_from(raw).ok()? {
                    $(pb::$pb::$variant => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What records a decision is about: a resource's name in the permission service's registry
/// (`account`, `contact`, `quote`, …; `[a-z][a-z0-9_]*`, at most 64 bytes).
///
/// Resources are data, declared by the services that own them, not a closed enum: a service
/// names its own with a constant ([`Resource::named`]), and a name read from the wire is
/// checked and interned ([`Resource::parse`]). Interning keeps the type `Copy` (it travels in
/// every scope key and route declaration); the interner holds at most [`MAX_RESOURCES`] names,
/// so input cannot grow it without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource(&'static str);

/// The most resource names one process interns; far above any deployment's resource count.
pub const MAX_RESOURCES: usize = 1024;

static INTERNED: std::sync::LazyLock<std::sync::RwLock<std::collections::BTreeSet<&'static str>>> =
    std::sync::LazyLock::new(|| std::sync::RwLock::new(std::collections::BTreeSet::new()));

impl Resource {
    pub const ACCOUNT: Resource = Resource("account");
    pub const CONTACT: Resource = Resource("contact");
    pub const LEAD: Resource = Resource("lead");
    pub const OPPORTUNITY: Resource = Resource("opportunity");
    pub const CONTRACT: Resource = Resource("contract");
    pub const TICKET: Resource = Resource("ticket");
    /// The audit trail (`AuditService`): only READ means anything.
    pub const AUDIT: Resource = Resource("audit");
    /// The organisation itself: users, roles, departments, shares, API clients.
    pub const ORGANISATION: Resource = Resource("organisation");

    /// The resources that predate the registry: the values of the wire enum
    /// `crm.permission.v1.Resource`, and what [`Access::system`] covers.
    pub const WELL_KNOWN: &'static [Resource] = &[
        Resource::ACCOUNT,
        Resource::CONTACT,
        Resource::LEAD,
        Resource::OPPORTUNITY,
        Resource::CONTRACT,
        Resource::TICKET,
        Resource::AUDIT,
        Resource::ORGANISATION,
    ];

    /// A resource named in code (a service's own): `Resource::named("quote")`. The name must be
    /// valid ([`Resource::is_valid_name`]); a test of the declaring service checks it.
    pub const fn named(name: &'static str) -> Self {
        Resource(name)
    }

    /// Whether `name` may name a resource: `[a-z][a-z0-9_]*`, 2 to 64 bytes.
    pub fn is_valid_name(name: &str) -> bool {
        let bytes = name.as_bytes();
        (2..=64).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
    }

    /// A name read from input or the wire; `None` when it is not a valid name (or the interner
    /// is full). Whether such a resource exists is the registry's to say.
    pub fn parse(name: &str) -> Option<Self> {
        // Every call's access context is decoded through here: the resources that predate the
        // registry (nearly every scope) are answered without touching the interner's lock.
        if let Some(&known) = Self::WELL_KNOWN.iter().find(|r| r.0 == name) {
            return Some(known);
        }
        if !Self::is_valid_name(name) {
            return None;
        }
        if let Some(&known) = INTERNED.read().expect("not poisoned").get(name) {
            return Some(Resource(known));
        }
        let mut interned = INTERNED.write().expect("not poisoned");
        if let Some(&known) = interned.get(name) {
            return Some(Resource(known));
        }
        if interned.len() >= MAX_RESOURCES {
            return None;
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        interned.insert(leaked);
        Some(Resource(leaked))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The wire enum's value; UNSPECIFIED for resources newer than it (their name says it).
    pub fn to_pb(self) -> pb::Resource {
        match self.0 {
            "account" => pb::Resource::Account,
            "contact" => pb::Resource::Contact,
            "lead" => pb::Resource::Lead,
            "opportunity" => pb::Resource::Opportunity,
            "contract" => pb::Resource::Contract,
            "ticket" => pb::Resource::Ticket,
            "audit" => pb::Resource::Audit,
            "organisation" => pb::Resource::Organisation,
            _ => pb::Resource::Unspecified,
        }
    }

    /// From the wire: `name` (`resource_name`) when set, else the enum value `raw`; `None` when
    /// neither names a resource.
    pub fn from_wire(name: &str, raw: i32) -> Option<Self> {
        if !name.is_empty() {
            return Self::parse(name);
        }
        match pb::Resource::try_from(raw).ok()? {
            pb::Resource::Account => Some(Resource::ACCOUNT),
            pb::Resource::Contact => Some(Resource::CONTACT),
            pb::Resource::Lead => Some(Resource::LEAD),
            pb::Resource::Opportunity => Some(Resource::OPPORTUNITY),
            pb::Resource::Contract => Some(Resource::CONTRACT),
            pb::Resource::Ticket => Some(Resource::TICKET),
            pb::Resource::Audit => Some(Resource::AUDIT),
            pb::Resource::Organisation => Some(Resource::ORGANISATION),
            pb::Resource::Unspecified => None,
        }
    }

    /// Both wire forms: `(resource as i32, resource_name)`.
    pub fn to_wire(self) -> (i32, String) {
        (self.to_pb() as i32, self.0.to_string())
    }
}

impl serde::Serialize for Resource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Resource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Resource::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("{name:?} is not a resource name")))
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

wire_enum! {
    Action: Action {
        Read = "read",
        Create = "create",
        Update = "update",
        Delete = "delete",
        Export = "export",
        Assign = "assign",
        Approve = "approve",
    }
}

wire_enum! {
    Visibility: FieldVisibility {
        Hidden = "hidden",
        ReadOnly = "read_only",
        Editable = "editable",
    }
}

wire_enum! {
    /// How a read-only field is shown: [`mask::apply_mask`].
    MaskKind: MaskKind {
        Phone = "phone",
        Email = "email",
        IdNumber = "id_number",
    }
}

/// What a caller may do with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldAccess {
    pub visibility: Visibility,
    pub mask: Option<MaskKind>,
}

impl FieldAccess {
    /// A field without a rule.
    pub const UNRESTRICTED: FieldAccess = FieldAccess {
        visibility: Visibility::Editable,
        mask: None,
    };
}

/// The records one action may touch, and its field rules:
/// `all OR owner_id = ANY(owner_ids) OR department_id = ANY(department_ids)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub all: bool,
    pub owner_ids: Vec<Uuid>,
    pub department_ids: Vec<Uuid>,
    /// Fields that are not [`FieldAccess::UNRESTRICTED`].
    pub fields: BTreeMap<String, FieldAccess>,
    /// The caller's primary department: where their new records go by default.
    pub primary_department_id: Option<Uuid>,
    pub permission_version: i64,
    /// Records shared with the caller one by one.
    pub record_ids: Vec<Uuid>,
    /// `(field, equals)`: records matching a sharing rule.
    pub conditions: Vec<(String, String)>,
}

impl Scope {
    /// Every record, every field: for trusted tools and tests that act as the system.
    pub fn everything() -> Self {
        Scope {
            all: true,
            ..Default::default()
        }
    }

    /// No record at all: the action is not granted.
    pub fn is_empty(&self) -> bool {
        !self.all
            && self.owner_ids.is_empty()
            && self.department_ids.is_empty()
            && self.record_ids.is_empty()
            && self.conditions.is_empty()
    }

    /// Whether a record placed here (a new one, or where a move takes it) is covered by the
    /// scope's owners and departments. Sharing is about existing records: see
    /// [`Self::covers_record`].
    pub fn covers(&self, owner_id: Option<Uuid>, department_id: Option<Uuid>) -> bool {
        self.all
            || owner_id.is_some_and(|o| self.owner_ids.contains(&o))
            || department_id.is_some_and(|d| self.department_ids.contains(&d))
    }

    /// Whether an existing record is covered, sharing included: `attribute` gives the value of
    /// a field a sharing rule's condition names (`None`: the record has no such field).
    pub fn covers_record(
        &self,
        id: Uuid,
        owner_id: Option<Uuid>,
        department_id: Option<Uuid>,
        attribute: impl Fn(&str) -> Option<String>,
    ) -> bool {
        self.covers(owner_id, department_id)
            || self.record_ids.contains(&id)
            || self
                .conditions
                .iter()
                .any(|(field, equals)| attribute(field).as_deref() == Some(equals.as_str()))
    }

    pub fn field(&self, name: &str) -> FieldAccess {
        self.fields
            .get(name)
            .copied()
            .unwrap_or(FieldAccess::UNRESTRICTED)
    }

    pub fn hidden_fields(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(|(_, a)| a.visibility == Visibility::Hidden)
            .map(|(f, _)| f.as_str())
    }

    /// A value as the caller may see it: `None` when the field is hidden, masked when its rule
    /// says so, else unchanged.
    pub fn show(&self, field: &str, value: Option<String>) -> Option<String> {
        let access = self.field(field);
        match (access.visibility, access.mask) {
            (Visibility::Hidden, _) => None,
            (_, Some(kind)) => value.map(|v| mask::apply_mask(kind, &v)),
            _ => value,
        }
    }

    /// Refuses writes to fields that are not editable (`PERMISSION_DENIED`, one violation per
    /// field, so a client knows which ones to leave out).
    pub fn check_writable<'a>(
        &self,
        fields: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ApiError> {
        let violations: Vec<FieldViolation> = fields
            .into_iter()
            .filter(|f| self.field(f).visibility != Visibility::Editable)
            .map(|f| FieldViolation::new(f, "you may not set this field"))
            .collect();
        if violations.is_empty() {
            return Ok(());
        }
        let mut err = ApiError::new(
            Code::PermissionDenied,
            format!(
                "you may not set {}",
                violations
                    .iter()
                    .map(|v| v.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        err.violations = violations;
        Err(err)
    }

    /// Appends ` AND (<predicate>)` over the table's `id`, `owner_id` and `department_id`;
    /// `column` names the text column of a condition's field (`None`: the table has no such
    /// field, and the condition matches nothing).
    #[cfg(feature = "sql")]
    pub fn push_predicate(
        &self,
        b: &mut sqlx::QueryBuilder<sqlx::Postgres>,
        column: impl Fn(&str) -> Option<&'static str>,
    ) {
        if self.all {
            return;
        }
        if self.is_empty() {
            b.push(" AND false");
            return;
        }
        b.push(" AND (owner_id = ANY(")
            .push_bind(self.owner_ids.clone())
            .push(") OR department_id = ANY(")
            .push_bind(self.department_ids.clone())
            .push(")");
        if !self.record_ids.is_empty() {
            b.push(" OR id = ANY(")
                .push_bind(self.record_ids.clone())
                .push(")");
        }
        for (field, equals) in &self.conditions {
            // Only compile-time column names reach the SQL text; the value is bound.
            if let Some(col) = column(field) {
                b.push(format_args!(" OR {col} = "))
                    .push_bind(equals.clone());
            }
        }
        b.push(")");
    }
}

fn malformed(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        Code::InvalidArgument,
        format!("{METADATA_KEY} is malformed: {what}"),
    )
}

fn uuid_of(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| malformed(format!("{field} {raw:?} is not a UUID")))
}

fn optional_uuid(field: &str, raw: &str) -> Result<Option<Uuid>, ApiError> {
    (!raw.is_empty()).then(|| uuid_of(field, raw)).transpose()
}

impl TryFrom<pb::CompiledScope> for Scope {
    type Error = ApiError;

    fn try_from(s: pb::CompiledScope) -> Result<Self, ApiError> {
        let ids = |field: &str, raw: &[String]| -> Result<Vec<Uuid>, ApiError> {
            raw.iter().map(|r| uuid_of(field, r)).collect()
        };
        let mut fields = BTreeMap::new();
        for f in s.fields {
            let visibility = Visibility::from_pb(f.visibility)
                .ok_or_else(|| malformed(format!("field {:?} has no visibility", f.field)))?;
            let mask = MaskKind::from_pb(f.mask);
            fields.insert(f.field, FieldAccess { visibility, mask });
        }
        Ok(Scope {
            record_ids: ids("record_ids", &s.record_ids)?,
            conditions: s
                .conditions
                .into_iter()
                .map(|c| (c.field, c.equals))
                .collect(),
            all: s.all,
            owner_ids: ids("owner_ids", &s.owner_ids)?,
            department_ids: ids("department_ids", &s.department_ids)?,
            fields,
            primary_department_id: optional_uuid(
                "primary_department_id",
                &s.primary_department_id,
            )?,
            permission_version: s.permission_version,
        })
    }
}

impl From<&Scope> for pb::CompiledScope {
    fn from(s: &Scope) -> Self {
        let ids = |v: &[Uuid]| v.iter().map(Uuid::to_string).collect();
        pb::CompiledScope {
            all: s.all,
            owner_ids: ids(&s.owner_ids),
            department_ids: ids(&s.department_ids),
            fields: s
                .fields
                .iter()
                .map(|(field, a)| pb::FieldAccess {
                    field: field.clone(),
                    visibility: a.visibility.to_pb() as i32,
                    mask: a.mask.map_or(0, |m| m.to_pb() as i32),
                })
                .collect(),
            permission_version: s.permission_version,
            primary_department_id: s
                .primary_department_id
                .map(|d| d.to_string())
                .unwrap_or_default(),
            record_ids: ids(&s.record_ids),
            conditions: s
                .conditions
                .iter()
                .map(|(field, equals)| pb::RecordCondition {
                    field: field.clone(),
                    equals: equals.clone(),
                })
                .collect(),
        }
    }
}

/// A scope whose encoding exceeds this many bytes travels by reference (see
/// [`Access::encode`]). Two KiB keeps a context of a handful of scopes well inside HTTP/2's
/// usual 16 KiB header list, whatever the caller's shares, subordinates or departments.
pub const INLINE_SCOPE_LIMIT: usize = 2048;

/// The caller of one call and their scope per resource and action.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub user_id: Uuid,
    /// Where the call comes from, for the audit trail.
    pub origin: Origin,
    scopes: BTreeMap<(Resource, Action), Scope>,
    /// Scopes that arrived by reference and are not resolved yet: (resource, action) → the
    /// permission version they were compiled at.
    references: BTreeMap<(Resource, Action), i64>,
    /// The caller's effective time zone and language, when the context carries them.
    time_zone: Option<Tz>,
    locale: Option<Locale>,
}

/// Where a call comes from: what the gateway saw of the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The API client whose token made the call.
    pub api_client_id: Option<String>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// `PERMISSION_DENIED` for an action the caller holds no grant for.
pub fn denied(resource: Resource, action: Action) -> ApiError {
    ApiError::new(
        Code::PermissionDenied,
        format!("you may not {action} {resource} records"),
    )
}

impl Access {
    pub fn new(user_id: Uuid) -> Self {
        Access {
            user_id,
            origin: Origin::default(),
            scopes: BTreeMap::new(),
            references: BTreeMap::new(),
            time_zone: None,
            locale: None,
        }
    }

    /// The caller's effective time zone and language (their own, else the organisation's), as
    /// the gateway learnt them from the permission service.
    pub fn with_preferences(mut self, preferences: Preferences) -> Self {
        self.time_zone = Some(preferences.time_zone);
        self.locale = Some(preferences.locale);
        self
    }

    /// The time zone and language the context carries; `None` for a context made without them
    /// (a caller that predates them, or a tool acting as the system).
    pub fn preferences(&self) -> Option<Preferences> {
        Some(Preferences {
            time_zone: self.time_zone?,
            locale: self.locale?,
        })
    }

    /// The caller's time zone: the one to compute "today", months, quiet hours and report
    /// periods in. [`Preferences::FALLBACK`]'s (UTC) when the context carries none.
    pub fn time_zone(&self) -> Tz {
        self.time_zone.unwrap_or(Preferences::FALLBACK.time_zone)
    }

    /// The caller's language, for texts a service writes for them (notifications, exports).
    /// English when the context carries none.
    pub fn locale(&self) -> Locale {
        self.locale.unwrap_or(Preferences::FALLBACK.locale)
    }

    /// The caller's calendar date at `now` (pass the request's clock, so tests can pin it):
    /// what "today" means for them.
    pub fn today(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        preferences::today(self.time_zone(), now)
    }

    /// The instants `[start, end)` of one of the caller's calendar days, for queries such as
    /// "created today" (see [`preferences::day_range`]).
    pub fn day_range(
        &self,
        date: chrono::NaiveDate,
    ) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
        preferences::day_range(self.time_zone(), date)
    }

    /// Every action on every record of the well-known resources: what a trusted tool or a test
    /// acting as the system holds. Resources declared later (`follow_up`, …) are not in a
    /// closed list: name them with [`Self::system_over`].
    pub fn system(user_id: Uuid) -> Self {
        Self::system_over(user_id, Resource::WELL_KNOWN.iter().copied())
    }

    /// Every action on every record of `resources` (a service's tests pass the resources its
    /// declaration names).
    pub fn system_over(user_id: Uuid, resources: impl IntoIterator<Item = Resource>) -> Self {
        let mut access = Access::new(user_id);
        for resource in resources {
            for &action in Action::ALL {
                access.insert(resource, action, Scope::everything());
            }
        }
        access
    }

    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Who acted and from where, as events and audit entries record it.
    pub fn actor(&self) -> serde_json::Value {
        serde_json::json!({
            "user_id": self.user_id,
            "api_client_id": self.origin.api_client_id,
            "client_ip": self.origin.client_ip,
            "user_agent": self.origin.user_agent,
        })
    }

    pub fn with(mut self, resource: Resource, action: Action, scope: Scope) -> Self {
        self.insert(resource, action, scope);
        self
    }

    /// Sets the scope of `action` on `resource` (resolving it, when it arrived by reference).
    pub fn insert(&mut self, resource: Resource, action: Action, scope: Scope) {
        self.references.remove(&(resource, action));
        self.scopes.insert((resource, action), scope);
    }

    /// The scope of `action` on `resource`, if the context carries one (and it is resolved).
    pub fn get(&self, resource: Resource, action: Action) -> Option<&Scope> {
        self.scopes.get(&(resource, action))
    }

    /// The scope of `action` on `resource`; `PERMISSION_DENIED` when the caller may not do it
    /// at all.
    pub fn scope(&self, resource: Resource, action: Action) -> Result<&Scope, ApiError> {
        match self.get(resource, action) {
            Some(scope) if !scope.is_empty() => Ok(scope),
            // A server that forgot to resolve references must not read them as "no grant".
            None if self.references.contains_key(&(resource, action)) => Err(ApiError::new(
                Code::Internal,
                format!(
                    "the scope to {action} {resource} records arrived by reference and was not resolved"
                ),
            )),
            _ => Err(denied(resource, action)),
        }
    }

    /// The scopes that arrived by reference and still have to be fetched (resource, action,
    /// the permission version they were compiled at). Servers resolve them before any handler
    /// runs (`crm_identity`'s `VerifyCalls`), then [`Self::insert`] the answers.
    pub fn unresolved(&self) -> impl Iterator<Item = (Resource, Action, i64)> + '_ {
        self.references
            .iter()
            .map(|(&(resource, action), &version)| (resource, action, version))
    }

    /// The context a call carries; `UNAUTHENTICATED` without one.
    pub fn from_metadata(metadata: &MetadataMap) -> Result<Self, ApiError> {
        let value = metadata.get_bin(METADATA_KEY).ok_or_else(|| {
            ApiError::new(
                Code::Unauthenticated,
                format!("the call carries no access context ({METADATA_KEY})"),
            )
        })?;
        let bytes = value.to_bytes().map_err(|_| malformed("not base64"))?;
        Self::decode(&bytes)
    }

    /// The context from the raw `crm-access-bin` header value, as a server layer sees it before
    /// tonic parses the metadata (decoded the same way as [`Self::from_metadata`]).
    pub fn from_header_value(value: &[u8]) -> Result<Self, ApiError> {
        let value = tonic::codegen::http::HeaderValue::from_bytes(value)
            .map_err(|_| malformed("not a header value"))?;
        let mut headers = tonic::codegen::http::HeaderMap::new();
        headers.insert(METADATA_KEY, value);
        Self::from_metadata(&MetadataMap::from_headers(headers))
    }

    pub fn to_metadata(&self, metadata: &mut MetadataMap) {
        metadata.insert_bin(METADATA_KEY, MetadataValue::from_bytes(&self.encode()));
    }

    /// The wire form. A scope larger than [`INLINE_SCOPE_LIMIT`] goes by reference (only its
    /// permission version, ADR 0016), and so does one that arrived by reference: the context
    /// stays a few KiB however many records are shared with the caller.
    pub fn encode(&self) -> Vec<u8> {
        let entry = |resource: Resource, action: Action, scope, by_reference| pb::ActionScope {
            resource: resource.to_pb() as i32,
            resource_name: resource.as_str().to_string(),
            action: action.to_pb() as i32,
            scope: Some(scope),
            by_reference,
        };
        let reference = |version| pb::CompiledScope {
            permission_version: version,
            ..Default::default()
        };
        let inline = self.scopes.iter().map(|(&(resource, action), scope)| {
            let wire = pb::CompiledScope::from(scope);
            if wire.encoded_len() > INLINE_SCOPE_LIMIT {
                entry(resource, action, reference(scope.permission_version), true)
            } else {
                entry(resource, action, wire, false)
            }
        });
        let referenced = self
            .references
            .iter()
            .map(|(&(resource, action), &version)| {
                entry(resource, action, reference(version), true)
            });
        pb::AccessContext {
            user_id: self.user_id.to_string(),
            scopes: inline.chain(referenced).collect(),
            client_ip: self.origin.client_ip.clone().unwrap_or_default(),
            user_agent: self.origin.user_agent.clone().unwrap_or_default(),
            api_client_id: self.origin.api_client_id.clone().unwrap_or_default(),
            time_zone: self
                .time_zone
                .map(|tz| tz.name().to_string())
                .unwrap_or_default(),
            locale: self
                .locale
                .map(|l| l.as_str().to_string())
                .unwrap_or_default(),
        }
        .encode_to_vec()
    }

    /// Reads an encoded context. A time zone or locale this build does not know (a newer tz
    /// database at the gateway during a rolling upgrade) is read as absent, not refused: the
    /// call still works, in [`Preferences::FALLBACK`]'s terms.
    pub fn decode(bytes: &[u8]) -> Result<Self, ApiError> {
        let context = pb::AccessContext::decode(bytes).map_err(malformed)?;
        let mut access = Access::new(uuid_of("user_id", &context.user_id)?).with_origin(Origin {
            client_ip: non_empty(context.client_ip),
            user_agent: non_empty(context.user_agent),
            api_client_id: non_empty(context.api_client_id),
        });
        access.time_zone = preferences::parse_time_zone(&context.time_zone);
        access.locale = Locale::parse(&context.locale);
        for s in context.scopes {
            let resource = Resource::from_wire(&s.resource_name, s.resource)
                .ok_or_else(|| malformed("unknown resource"))?;
            let action = Action::from_pb(s.action).ok_or_else(|| malformed("unknown action"))?;
            let scope = s.scope.unwrap_or_default();
            if s.by_reference {
                access
                    .references
                    .insert((resource, action), scope.permission_version);
            } else {
                access.insert(resource, action, scope.try_into()?);
            }
        }
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn scope() -> Scope {
        Scope {
            all: false,
            owner_ids: vec![id(1), id(2)],
            department_ids: vec![id(10)],
            fields: BTreeMap::from([
                (
                    "phone".to_string(),
                    FieldAccess {
                        visibility: Visibility::ReadOnly,
                        mask: Some(MaskKind::Phone),
                    },
                ),
                (
                    "website".to_string(),
                    FieldAccess {
                        visibility: Visibility::Hidden,
                        mask: None,
                    },
                ),
                (
                    "industry".to_string(),
                    FieldAccess {
                        visibility: Visibility::ReadOnly,
                        mask: None,
                    },
                ),
            ]),
            primary_department_id: Some(id(10)),
            permission_version: 7,
            ..Default::default()
        }
    }

    #[test]
    fn covers_owners_departments_or_everything() {
        let s = scope();
        assert!(s.covers(Some(id(2)), None));
        assert!(s.covers(Some(id(3)), Some(id(10))));
        assert!(!s.covers(Some(id(3)), Some(id(11))));
        assert!(!s.covers(None, None));
        assert!(Scope::everything().covers(None, None));
        assert!(Scope::default().is_empty());
        assert!(!Scope::default().covers(Some(id(1)), Some(id(10))));
    }

    #[test]
    fn shared_records_and_conditions_cover_existing_records_only() {
        let mut s = Scope::default();
        s.record_ids.push(id(7));
        s.conditions.push(("grade".into(), "A".into()));
        assert!(!s.is_empty());
        assert!(s.covers_record(id(7), Some(id(99)), None, |_| None));
        assert!(s.covers_record(id(8), None, None, |f| (f == "grade").then(|| "A".into())));
        assert!(!s.covers_record(id(8), None, None, |f| (f == "grade").then(|| "B".into())));
        assert!(
            !s.covers(Some(id(99)), None),
            "placing a record: sharing does not count"
        );
    }

    #[test]
    fn shows_values_as_the_field_rules_say() {
        let s = scope();
        assert_eq!(
            s.show("phone", Some("13812345678".into())).as_deref(),
            Some("138****5678")
        );
        assert_eq!(s.show("website", Some("https://x.example".into())), None);
        assert_eq!(
            s.show("industry", Some("Retail".into())).as_deref(),
            Some("Retail")
        );
        assert_eq!(s.show("name", Some("Acme".into())).as_deref(), Some("Acme"));
        assert_eq!(s.show("phone", None), None);
        assert_eq!(s.hidden_fields().collect::<Vec<_>>(), ["website"]);
    }

    #[test]
    fn writes_to_read_only_and_hidden_fields_are_refused_by_name() {
        let s = scope();
        assert!(s.check_writable(["name", "email"]).is_ok());
        let err = s.check_writable(["name", "phone", "website"]).unwrap_err();
        assert_eq!(err.code, Code::PermissionDenied);
        let fields: Vec<_> = err.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["phone", "website"]);
    }

    #[test]
    fn round_trips_through_metadata() {
        let access = Access::new(id(1))
            .with_origin(Origin {
                client_ip: Some("10.0.0.7".into()),
                user_agent: None,
                api_client_id: Some("erp".into()),
            })
            .with(Resource::CONTACT, Action::Read, scope())
            .with(Resource::ACCOUNT, Action::Update, Scope::everything());
        let mut metadata = MetadataMap::new();
        access.to_metadata(&mut metadata);
        let back = Access::from_metadata(&metadata).unwrap();
        assert_eq!(back, access);
        assert_eq!(
            back.scope(Resource::CONTACT, Action::Read).unwrap(),
            &scope()
        );
        assert!(back.get(Resource::ACCOUNT, Action::Read).is_none());
        assert_eq!(
            back.scope(Resource::CONTACT, Action::Update)
                .unwrap_err()
                .code,
            Code::PermissionDenied
        );
        assert_eq!(Access::system(id(2)).scopes.len(), 8 * 7);
    }

    #[test]
    fn a_large_scope_travels_by_reference_and_the_context_stays_small() {
        let mut shared = scope();
        shared.record_ids = (0..10_000).map(|n| id(1_000_000 + n)).collect();
        shared.permission_version = 42;
        let access = Access::new(id(1))
            .with(Resource::ACCOUNT, Action::Read, shared.clone())
            .with(Resource::ACCOUNT, Action::Update, shared.clone())
            .with(Resource::CONTACT, Action::Read, scope());
        let wire = access.encode();
        assert!(
            wire.len() < 2 * 1024,
            "ten thousand shares cost {} bytes",
            wire.len()
        );

        let mut back = Access::decode(&wire).unwrap();
        assert_eq!(
            back.unresolved().collect::<Vec<_>>(),
            [
                (Resource::ACCOUNT, Action::Read, 42),
                (Resource::ACCOUNT, Action::Update, 42)
            ]
        );
        // Small scopes are still carried whole; an unresolved one is not mistaken for "no grant".
        assert_eq!(
            back.scope(Resource::CONTACT, Action::Read).unwrap(),
            &scope()
        );
        assert_eq!(
            back.scope(Resource::ACCOUNT, Action::Read)
                .unwrap_err()
                .code,
            Code::Internal
        );
        // Passed on unresolved, it stays a reference.
        assert_eq!(Access::decode(&back.encode()).unwrap(), back);

        back.insert(Resource::ACCOUNT, Action::Read, shared.clone());
        back.insert(Resource::ACCOUNT, Action::Update, shared.clone());
        assert_eq!(back.unresolved().count(), 0);
        assert_eq!(back, access);
        assert!(
            back.scope(Resource::ACCOUNT, Action::Read)
                .unwrap()
                .record_ids
                .len()
                == 10_000
        );
    }

    #[test]
    fn time_zone_and_locale_travel_with_the_context() {
        let access = Access::new(id(1))
            .with(Resource::ACCOUNT, Action::Read, Scope::everything())
            .with_preferences(Preferences {
                time_zone: Tz::Asia__Shanghai,
                locale: Locale::ZhCn,
            });
        let mut metadata = MetadataMap::new();
        access.to_metadata(&mut metadata);
        let back = Access::from_metadata(&metadata).unwrap();
        assert_eq!(back, access);
        assert_eq!(back.time_zone(), Tz::Asia__Shanghai);
        assert_eq!(back.locale(), Locale::ZhCn);
        let wire = pb::AccessContext::decode(access.encode().as_slice()).unwrap();
        assert_eq!(
            (wire.time_zone.as_str(), wire.locale.as_str()),
            ("Asia/Shanghai", "zh-CN")
        );

        // "Today" is the caller's: at 16:30Z it is already tomorrow in Shanghai.
        let now = chrono::DateTime::parse_from_rfc3339("2025-03-10T16:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(back.today(now).to_string(), "2025-03-11");
        let (start, _) = back.day_range(back.today(now));
        assert_eq!(start.to_rfc3339(), "2025-03-10T16:00:00+00:00");

        // Without them (an older caller, a system tool): UTC and English, stated.
        let bare = Access::decode(&Access::new(id(1)).encode()).unwrap();
        assert_eq!(bare.preferences(), None);
        assert_eq!(bare.time_zone(), Tz::UTC);
        assert_eq!(bare.locale(), Locale::En);
        assert_eq!(bare.today(now).to_string(), "2025-03-10");

        // A zone this build does not know is read as absent, not as an error.
        let newer = pb::AccessContext {
            user_id: id(1).to_string(),
            time_zone: "Mars/Olympus_Mons".into(),
            locale: "tlh".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let read = Access::decode(&newer).unwrap();
        assert_eq!(read.preferences(), None);
        assert_eq!(read.time_zone(), Tz::UTC);
    }

    #[test]
    fn a_missing_or_broken_context_is_refused() {
        let missing = Access::from_metadata(&MetadataMap::new()).unwrap_err();
        assert_eq!(missing.code, Code::Unauthenticated);

        let mut broken = MetadataMap::new();
        broken.insert_bin(METADATA_KEY, MetadataValue::from_bytes(b"\xff\xff\xff"));
        assert_eq!(
            Access::from_metadata(&broken).unwrap_err().code,
            Code::InvalidArgument
        );

        let bad_id = pb::AccessContext {
            user_id: "nobody".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            Access::decode(&bad_id).unwrap_err().code,
            Code::InvalidArgument
        );
    }

    #[test]
    fn an_empty_scope_is_no_grant() {
        let access = Access::new(id(1)).with(Resource::ACCOUNT, Action::Read, Scope::default());
        assert_eq!(
            access
                .scope(Resource::ACCOUNT, Action::Read)
                .unwrap_err()
                .message,
            "you may not read account records"
        );
    }

    #[test]
    fn resource_names_are_checked_and_interned() {
        assert_eq!(Resource::parse("account"), Some(Resource::ACCOUNT));
        let quote = Resource::parse("quote").expect("a new, well-formed name");
        assert_eq!(Resource::parse("quote"), Some(quote));
        assert_eq!(quote.as_str(), "quote");
        assert!(std::ptr::eq(
            quote.as_str(),
            Resource::parse("quote").unwrap().as_str()
        ));
        for bad in ["", "a", "Account", "1lead", "le-ad", &"x".repeat(65)] {
            assert_eq!(Resource::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            Resource::from_wire("", pb::Resource::Lead as i32),
            Some(Resource::LEAD)
        );
        assert_eq!(
            Resource::from_wire("quote", pb::Resource::Lead as i32),
            Some(quote)
        );
        assert_eq!(Resource::from_wire("", 0), None);
        assert_eq!(quote.to_pb(), pb::Resource::Unspecified);
        assert_eq!(
            serde_json::from_value::<Resource>(serde_json::json!("contact")).unwrap(),
            Resource::CONTACT
        );
    }
}
