//! The data model as configuration: custom fields now; layouts, validation and automation rules
//! next (issue 11). Each owning service serves its own entities' configuration; reading it
//! needs READ on the entity (clients draw forms from it), changing it the `customization` grant.
//!
//! - [`fields`]: custom field definitions, routed by entity ([`crate::upstream::fields`]);
//! - [`validation_rules`]: rules across fields in the condition language.

pub mod fields;
pub mod validation_rules;

use axum::extract::FromRef;
use crm_access::{Action as A, Resource};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::security::Security;
use crate::upstream::fields::Fields;

/// Who may change the data model (`crm_fields::CUSTOMIZATION`).
pub const CUSTOMIZATION: Resource = Resource::named("customization");

#[derive(OpenApi)]
#[openapi(tags(
    (name = "fields", description = "Custom fields (自定义字段), defined at run time without \
        migrations. Records carry their values in `custom`; field rules name them \
        `custom.<key>`. Reading definitions needs `read` on the entity; defining, changing and \
        deleting them needs the `customization` grant."),
))]
struct Tags;

/// The domain's routes and their OpenAPI operations.
pub fn routes<S>(s: &Security) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Fields: FromRef<S>,
    Security: FromRef<S>,
{
    const C: Resource = CUSTOMIZATION;
    OpenApiRouter::with_openapi(Tags::openapi())
        // The owning service decides: READ on the entity or on customization.
        .routes(s.signed_in(routes!(fields::list)))
        .routes(s.signed_in(routes!(fields::get)))
        .routes(s.permit(C, A::Create, &[], s.idempotent(routes!(fields::create))))
        .routes(s.permit(C, A::Update, &[], routes!(fields::update)))
        .routes(s.permit(C, A::Delete, &[], routes!(fields::delete)))
        .routes(s.permit(C, A::Read, &[], routes!(validation_rules::list)))
        .routes(s.permit(
            C,
            A::Create,
            &[],
            s.idempotent(routes!(validation_rules::create)),
        ))
        .routes(s.permit(C, A::Update, &[], routes!(validation_rules::update)))
        .routes(s.permit(C, A::Delete, &[], routes!(validation_rules::delete)))
}
