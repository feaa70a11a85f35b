//! The gRPC edge: `crm.fields.v1.FieldService` over [`CustomFields`], served by each owning
//! service for its own entities (`FieldApi::new(fields).server()` beside its own service).

use crm_errors::validation::Violations;
use crm_proto::fields as pb;
use crm_proto::fields::field_service_server::{FieldService, FieldServiceServer};
use tonic::{Request, Response, Status};

use crate::definition::{Choice, Definition, DefinitionPatch, Labels, NewDefinition, Rules};
use crate::rules::{RuleInput, ValidationRule, ValidationRules};
use crate::service::CustomFields;

/// `FieldService` over one service's custom fields and validation rules.
pub struct FieldApi {
    fields: CustomFields,
    rules: ValidationRules,
}

impl FieldApi {
    pub fn new(fields: CustomFields) -> Self {
        Self {
            rules: ValidationRules::new(fields.clone()),
            fields,
        }
    }

    pub fn server(self) -> FieldServiceServer<Self> {
        FieldServiceServer::new(self)
    }
}

pub use crm_proto::fields::field_service_server::SERVICE_NAME;

type GrpcResult<T> = Result<Response<T>, Status>;

fn access<T>(request: &Request<T>) -> Result<crm_access::Access, Status> {
    Ok(crm_identity::user_access(request)?)
}

#[tonic::async_trait]
impl FieldService for FieldApi {
    async fn list_fields(
        &self,
        request: Request<pb::ListFieldsRequest>,
    ) -> GrpcResult<pb::ListFieldsResponse> {
        let access = access(&request)?;
        let r = request.into_inner();
        let fields = self.fields.list(&access, &r.entity).await?;
        Ok(Response::new(pb::ListFieldsResponse {
            fields: fields.into_iter().map(to_pb).collect(),
        }))
    }

    async fn get_field(&self, request: Request<pb::GetFieldRequest>) -> GrpcResult<pb::Field> {
        let access = access(&request)?;
        let r = request.into_inner();
        let field = self.fields.get(&access, &r.entity, &r.key).await?;
        Ok(Response::new(to_pb(field)))
    }

    async fn create_field(
        &self,
        request: Request<pb::CreateFieldRequest>,
    ) -> GrpcResult<pb::Field> {
        let access = access(&request)?;
        let r = request.into_inner();
        let f = r.field.unwrap_or_default();
        let mut v = Violations::default();
        let new = NewDefinition {
            key: f.key,
            field_type: f.r#type,
            label: labels(f.label),
            help: labels(f.help),
            required: f.required,
            unique: f.unique,
            indexed: f.indexed,
            default: f
                .default_json
                .as_deref()
                .and_then(|j| json(&mut v, "default", j)),
            rules: rules(&mut v, f.rules),
            options: f.options.into_iter().map(choice).collect(),
            target: f.target,
            currency: f.currency,
            position: r.has_position.then_some(f.position),
        };
        v.into_result()?;
        let field = self.fields.create(&access, &r.entity, new).await?;
        Ok(Response::new(to_pb(field)))
    }

    async fn update_field(
        &self,
        request: Request<pb::UpdateFieldRequest>,
    ) -> GrpcResult<pb::Field> {
        let access = access(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        let default = if r.clear_default {
            Some(None)
        } else {
            r.default_json
                .as_deref()
                .map(|j| json(&mut v, "default", j))
        };
        let patch = DefinitionPatch {
            label: r.label.map(|l| labels(Some(l))),
            help: r.help.map(|l| labels(Some(l))),
            required: r.required,
            unique: r.unique,
            indexed: r.indexed,
            default,
            rules: r.rules.map(|x| rules(&mut v, Some(x))),
            options: r.options.map(|o| o.items.into_iter().map(choice).collect()),
            position: r.position,
            active: r.active,
        };
        if r.expected_version < 1 {
            v.add("expected_version", "must be the version you read (≥ 1)");
        }
        v.into_result()?;
        let field = self
            .fields
            .update(
                &access,
                &r.entity,
                &r.key,
                r.expected_version,
                patch,
                r.force,
            )
            .await?;
        Ok(Response::new(to_pb(field)))
    }

    async fn delete_field(
        &self,
        request: Request<pb::DeleteFieldRequest>,
    ) -> GrpcResult<pb::DeleteFieldResponse> {
        let access = access(&request)?;
        let r = request.into_inner();
        let expected = (r.expected_version > 0).then_some(r.expected_version);
        let version = self
            .fields
            .delete(&access, &r.entity, &r.key, expected, r.purge, r.force)
            .await?;
        Ok(Response::new(pb::DeleteFieldResponse { version }))
    }

    async fn list_validation_rules(
        &self,
        request: Request<pb::ListValidationRulesRequest>,
    ) -> GrpcResult<pb::ListValidationRulesResponse> {
        let access = access(&request)?;
        let r = request.into_inner();
        let rules = self.rules.list(&access, &r.entity).await?;
        Ok(Response::new(pb::ListValidationRulesResponse {
            rules: rules.into_iter().map(rule_pb).collect(),
        }))
    }

    async fn create_validation_rule(
        &self,
        request: Request<pb::CreateValidationRuleRequest>,
    ) -> GrpcResult<pb::ValidationRule> {
        let access = access(&request)?;
        let r = request.into_inner();
        let rule = self
            .rules
            .create(
                &access,
                &r.entity,
                RuleInput {
                    key: r.key,
                    condition: Some(r.condition),
                    message: Some(labels(r.message)),
                    field: Some((!r.field.is_empty()).then_some(r.field)),
                    active: Some(!r.inactive),
                },
            )
            .await?;
        Ok(Response::new(rule_pb(rule)))
    }

    async fn update_validation_rule(
        &self,
        request: Request<pb::UpdateValidationRuleRequest>,
    ) -> GrpcResult<pb::ValidationRule> {
        let access = access(&request)?;
        let r = request.into_inner();
        if r.expected_version < 1 {
            let mut v = Violations::default();
            v.add("expected_version", "must be the version you read (≥ 1)");
            v.into_result()?;
        }
        let rule = self
            .rules
            .update(
                &access,
                &r.entity,
                r.expected_version,
                RuleInput {
                    key: r.key,
                    condition: r.condition,
                    message: r.message.map(|m| labels(Some(m))),
                    field: r.field.map(|f| (!f.is_empty()).then_some(f)),
                    active: r.active,
                },
            )
            .await?;
        Ok(Response::new(rule_pb(rule)))
    }

    async fn delete_validation_rule(
        &self,
        request: Request<pb::DeleteValidationRuleRequest>,
    ) -> GrpcResult<pb::DeleteValidationRuleResponse> {
        let access = access(&request)?;
        let r = request.into_inner();
        let expected = (r.expected_version > 0).then_some(r.expected_version);
        self.rules
            .delete(&access, &r.entity, &r.key, expected)
            .await?;
        Ok(Response::new(pb::DeleteValidationRuleResponse {}))
    }
}

/// A rule on the wire.
pub fn rule_pb(r: ValidationRule) -> pb::ValidationRule {
    pb::ValidationRule {
        id: r.id.to_string(),
        entity: r.entity,
        key: r.key,
        condition: r.condition,
        message: Some(pb::Labels {
            zh: r.message.zh,
            en: r.message.en,
        }),
        field: r.field.unwrap_or_default(),
        active: r.active,
        version: r.version,
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
    }
}

fn json(v: &mut Violations, field: &str, text: &str) -> Option<serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(_) => {
            v.add(field, "must be JSON");
            None
        }
    }
}

fn labels(l: Option<pb::Labels>) -> Labels {
    let l = l.unwrap_or_default();
    Labels { zh: l.zh, en: l.en }
}

fn choice(c: pb::Choice) -> Choice {
    Choice {
        value: c.value,
        label: labels(c.label),
        active: !c.deactivated,
    }
}

fn rules(v: &mut Violations, r: Option<pb::Rules>) -> Rules {
    let r = r.unwrap_or_default();
    let mut decimal = |name: &str, raw: Option<String>| {
        let raw = raw?;
        match rust_decimal::Decimal::from_str_exact(raw.trim()) {
            Ok(d) => Some(d),
            Err(_) => {
                v.add(name, "must be a decimal number");
                None
            }
        }
    };
    Rules {
        min: decimal("rules.min", r.min),
        max: decimal("rules.max", r.max),
        min_length: r.min_length,
        max_length: r.max_length,
        pattern: r.pattern,
        scale: r.scale,
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A definition on the wire.
pub fn to_pb(d: Definition) -> pb::Field {
    let label = |l: Labels| pb::Labels { zh: l.zh, en: l.en };
    pb::Field {
        id: d.id.to_string(),
        entity: d.entity,
        key: d.key,
        r#type: d.field_type.as_str().to_string(),
        label: Some(label(d.label)),
        help: Some(label(d.help)),
        required: d.required,
        unique: d.unique,
        indexed: d.indexed,
        default_json: d.default.map(|v| v.to_string()),
        rules: Some(pb::Rules {
            min_length: d.rules.min_length,
            max_length: d.rules.max_length,
            min: d.rules.min.map(|m| m.to_string()),
            max: d.rules.max.map(|m| m.to_string()),
            pattern: d.rules.pattern,
            scale: d.rules.scale,
        }),
        options: d
            .options
            .into_iter()
            .map(|o| pb::Choice {
                value: o.value,
                label: Some(label(o.label)),
                deactivated: !o.active,
            })
            .collect(),
        target: d.target,
        currency: d.currency,
        position: d.position,
        active: d.active,
        version: d.version,
        created_at: Some(timestamp(d.created_at)),
        updated_at: Some(timestamp(d.updated_at)),
    }
}
