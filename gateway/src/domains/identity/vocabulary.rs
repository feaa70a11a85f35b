//! The access vocabulary as the admin API spells it: resources, actions, data scopes, field
//! visibilities and masks, share access and account status, each a lower-case name in JSON and
//! in paths (`account`, `read`, `department_and_children`, `read_only`, `id_number`).
//!
//! Resources, actions, visibilities and masks are `crm_access`'s own names (`Resource::parse`):
//! one list for the whole system, so a resource added there is accepted and documented here
//! without a change. The rest mirror the permission service's enums. A name that is not one of
//! them is a 400 naming the field (or path parameter) and listing the accepted names.

use std::borrow::Cow;

use crm_proto::permission as pb;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::platform::convert::ConversionError;
use crate::platform::error::Error;

/// A JSON name for each value of one of `crm_access`'s wire enums: serialised with `as_str`,
/// read with `parse`, documented as a string enum listing `ALL`.
macro_rules! access_names {
    ($(#[$doc:meta])* $name:ident($inner:ty), $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl $name {
            pub fn to_pb(self) -> i32 {
                self.0.to_pb() as i32
            }

            /// The name in a service's answer (`field` names it in the error).
            pub fn from_pb(raw: i32) -> Result<Self, ConversionError> {
                <$inner>::from_pb(raw)
                    .map($name)
                    .ok_or_else(|| ConversionError::new($field, format!("unknown value {raw}")))
            }

            fn expected() -> String {
                format!(
                    "must be one of {}",
                    <$inner>::ALL
                        .iter()
                        .map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.0.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                <$inner>::parse(&name)
                    .map($name)
                    .ok_or_else(|| serde::de::Error::custom(Self::expected()))
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(<$inner>::ALL.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

/// What records a grant, field rule or share is about: a resource's registry name (`account`,
/// `contact`, …; `organisation` and `audit` are the administration and the audit trail
/// themselves). Resources are data: any well-formed name is passed on, and the permission
/// service refuses one its registry does not hold (a 400 naming the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceName(pub crm_access::Resource);

impl ResourceName {
    pub fn to_pb(self) -> i32 {
        self.0.to_pb() as i32
    }

    /// The name, for the wire's `resource_name`.
    pub fn name(self) -> String {
        self.0.as_str().to_string()
    }

    /// From a service's answer: `resource_name`, else the old enum value.
    pub fn from_wire(name: &str, raw: i32) -> Result<Self, ConversionError> {
        crm_access::Resource::from_wire(name, raw)
            .map(ResourceName)
            .ok_or_else(|| {
                ConversionError::new("resource", format!("unknown resource {name:?} ({raw})"))
            })
    }
}

const RESOURCE_NAME_RULE: &str =
    "must name a resource: 2 to 64 of a-z 0-9 _, starting with a letter";

impl Serialize for ResourceName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for ResourceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        crm_access::Resource::parse(&name)
            .map(ResourceName)
            .ok_or_else(|| serde::de::Error::custom(RESOURCE_NAME_RULE))
    }
}

impl PartialSchema for ResourceName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[a-z][a-z0-9_]{1,63}$"))
            .examples([serde_json::json!("account")])
            .into()
    }
}

impl ToSchema for ResourceName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ResourceName")
    }
}

access_names! {
    /// What a grant allows.
    ActionName(crm_access::Action), "action"
}

access_names! {
    /// How a field is shown: `hidden` (left out of every response, writes refused), `read_only`
    /// (shown, optionally masked; writes refused) or `editable`.
    Visibility(crm_access::Visibility), "visibility"
}

access_names! {
    /// How a read-only field is masked: `phone` (`138****5678`), `email` (`z***@example.com`),
    /// `id_number` (`110***********1234`).
    Mask(crm_access::MaskKind), "mask"
}

/// Which records a grant covers, relative to the user holding it. Every scope includes the
/// user's own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataScope {
    /// Records the user owns.
    Own,
    /// … and those owned by the user's subordinates, transitively.
    OwnAndSubordinates,
    /// … and records of the user's departments.
    Department,
    /// … and of every department below them.
    DepartmentAndChildren,
    /// Every record.
    All,
}

impl DataScope {
    pub fn to_pb(self) -> i32 {
        (match self {
            DataScope::Own => pb::DataScope::Own,
            DataScope::OwnAndSubordinates => pb::DataScope::OwnAndSubordinates,
            DataScope::Department => pb::DataScope::Department,
            DataScope::DepartmentAndChildren => pb::DataScope::DepartmentAndChildren,
            DataScope::All => pb::DataScope::All,
        }) as i32
    }

    pub fn from_pb(raw: i32) -> Result<Self, ConversionError> {
        match pb::DataScope::try_from(raw) {
            Ok(pb::DataScope::Own) => Ok(DataScope::Own),
            Ok(pb::DataScope::OwnAndSubordinates) => Ok(DataScope::OwnAndSubordinates),
            Ok(pb::DataScope::Department) => Ok(DataScope::Department),
            Ok(pb::DataScope::DepartmentAndChildren) => Ok(DataScope::DepartmentAndChildren),
            Ok(pb::DataScope::All) => Ok(DataScope::All),
            _ => Err(ConversionError::new(
                "scope",
                format!("unknown value {raw}"),
            )),
        }
    }
}

/// What a share or sharing rule gives: `read` (read and export) or `edit` (also update).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShareAccess {
    Read,
    Edit,
}

impl ShareAccess {
    pub fn to_pb(self) -> i32 {
        (match self {
            ShareAccess::Read => pb::ShareAccess::Read,
            ShareAccess::Edit => pb::ShareAccess::Edit,
        }) as i32
    }

    pub fn from_pb(raw: i32) -> Result<Self, ConversionError> {
        match pb::ShareAccess::try_from(raw) {
            Ok(pb::ShareAccess::Read) => Ok(ShareAccess::Read),
            Ok(pb::ShareAccess::Edit) => Ok(ShareAccess::Edit),
            _ => Err(ConversionError::new(
                "access",
                format!("unknown value {raw}"),
            )),
        }
    }
}

/// Whether a user or API client may act: `active` or `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
        }
    }

    pub fn to_pb(self) -> i32 {
        (match self {
            Status::Active => pb::UserStatus::Active,
            Status::Disabled => pb::UserStatus::Disabled,
        }) as i32
    }

    pub fn from_pb(raw: i32) -> Result<Self, ConversionError> {
        match pb::UserStatus::try_from(raw) {
            Ok(pb::UserStatus::Active) => Ok(Status::Active),
            Ok(pb::UserStatus::Disabled) => Ok(Status::Disabled),
            _ => Err(ConversionError::new(
                "status",
                format!("unknown value {raw}"),
            )),
        }
    }
}

/// A service's answer to a request that nests the body's fields (`SetFieldRuleRequest.rule`):
/// its field violations renamed to the API's fields (`rule.mask` → `mask`).
pub fn unnested(err: Error, prefix: &str) -> Error {
    match err {
        Error::Api(mut api) => {
            for violation in &mut api.violations {
                if let Some(field) = violation.field.strip_prefix(prefix) {
                    violation.field = field.to_string();
                }
            }
            Error::Api(api)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::extract::parse_json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        resource: ResourceName,
        #[serde(default)]
        mask: Option<Mask>,
        #[serde(deserialize_with = "crate::platform::fields::required")]
        manager_id: Option<uuid::Uuid>,
    }

    fn bad_field(json: &str) -> (String, String) {
        match parse_json::<Body>(json.as_bytes()) {
            Err(Error::Api(api)) => {
                let v = &api.violations[0];
                (v.field.clone(), v.message.clone())
            }
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn access_names_are_crm_access_names() {
        let body: Body =
            parse_json(br#"{"resource": "account", "mask": "id_number", "manager_id": null}"#)
                .unwrap();
        assert_eq!(body.resource, ResourceName(crm_access::Resource::ACCOUNT));
        assert_eq!(body.mask, Some(Mask(crm_access::MaskKind::IdNumber)));
        assert_eq!(body.manager_id, None);
        assert_eq!(
            serde_json::to_value(ResourceName(crm_access::Resource::ORGANISATION)).unwrap(),
            "organisation"
        );
        // Any well-formed name passes the gateway (the registry decides); a malformed one not.
        let (field, message) = bad_field(r#"{"resource": "Planet!", "manager_id": null}"#);
        assert_eq!(field, "resource");
        assert!(message.contains("must name a resource"), "{message}");
        assert_eq!(
            bad_field(r#"{"resource": "account", "mask": "blur", "manager_id": null}"#).0,
            "mask"
        );
        // Required though nullable: a forgotten field must not read as "clear it".
        assert_eq!(bad_field(r#"{"resource": "account"}"#).0, "manager_id");
    }

    #[test]
    fn enums_document_every_name() {
        let schema = serde_json::to_value(ActionName::schema()).unwrap();
        let names: Vec<&str> = crm_access::Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(schema["enum"], serde_json::json!(names));
        assert_eq!(ActionName::name(), "ActionName");
        assert_eq!(
            DataScope::from_pb(DataScope::DepartmentAndChildren.to_pb()).unwrap(),
            DataScope::DepartmentAndChildren
        );
        assert!(
            DataScope::from_pb(0).is_err(),
            "unspecified is a service bug"
        );
    }
}
