//! The record routes, written once: create, list, read, update, delete and export for any
//! resource that implements [`RecordApi`], with their guards and their OpenAPI operations.
//!
//! A resource states what differs — its names, its JSON types, the extra scopes each write
//! passes on, its export columns, and how each call maps onto its service's gRPC API — and
//! [`routes`] gives it the shared behaviour:
//!
//! | route | guard | answer |
//! |---|---|---|
//! | `POST /api/v1/{c}` | create (+ `CREATE_ALSO`), `Idempotency-Key` | 201, `Location`, `ETag` |
//! | `GET /api/v1/{c}` | read | a page; `page_size` 1..=200 |
//! | `GET /api/v1/{c}/export` | export | NDJSON or CSV, streamed |
//! | `GET /api/v1/{c}/{id}` | read | the record, `ETag` |
//! | `PATCH /api/v1/{c}/{id}` | update (+ `UPDATE_ALSO`), `If-Match` required | the record, `ETag` |
//! | `DELETE /api/v1/{c}/{id}` | delete (+ `DELETE_ALSO`), `If-Match` optional | 204 |
//!
//! Every record a route returns passes through the caller's READ field rules
//! ([`visible`]): the service already emptied hidden fields, the gateway leaves their keys out.

use std::future::Future;

use axum::Extension;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete as delete_method, get as get_method, patch as patch_method, post};
use crm_access::{Access, Action, Resource};
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, Paths, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use uuid::Uuid;

use super::error::{Error, Result};
use super::export::{self, ExportFormat};
use super::extract::{ApiJson, ApiQuery, IdPath, IfMatch};
use super::response::{check_page_size, created, no_content, visible, visible_list, with_etag};
use crate::security::Security;

/// A record as the API shows it: its id (for `Location`) and version (for `ETag`).
pub trait Versioned {
    fn id(&self) -> Uuid;
    fn version(&self) -> i64;
}

/// The query string of a list: the page size is checked here, the rest is the resource's.
pub trait Paged {
    fn page_size(&self) -> Option<u32>;
    /// Whether the caller asked for `total_size` (counting costs a query of its own).
    fn include_total(&self) -> bool;
}

/// The query string of an export: its format is read here, the rest is the resource's.
pub trait Exported {
    fn format(&self) -> ExportFormat;
}

/// Pages of records, converted to the API's types, as an export streams them.
pub type RecordPages<T> = BoxStream<'static, Result<Vec<T>>>;

/// The answer of an export call as [`RecordPages`]: `rows` takes a page message's records, each
/// converted to the API's type (a gRPC error becomes its problem; a record the API cannot
/// represent, an internal error: a bug in the service).
pub async fn export_pages<P, W, T>(
    call: impl Future<Output = std::result::Result<tonic::Response<tonic::Streaming<P>>, tonic::Status>>,
    rows: fn(P) -> Vec<W>,
) -> Result<RecordPages<T>>
where
    P: Send + 'static,
    W: 'static,
    T: TryFrom<W> + Send + 'static,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    use futures::StreamExt;
    let pages = call.await.map_err(Error::from_status)?;
    Ok(pages
        .into_inner()
        .map(move |page| {
            rows(page.map_err(Error::from_status)?)
                .into_iter()
                .map(|r| T::try_from(r).map_err(Error::internal))
                .collect()
        })
        .boxed())
}

/// A call whose answer says nothing the API returns (a delete's): only its failure matters.
pub async fn done<R>(
    call: impl Future<Output = std::result::Result<tonic::Response<R>, tonic::Status>>,
) -> Result<()> {
    call.await.map_err(Error::from_status)?;
    Ok(())
}

/// What a resource states for [`routes`] to serve it (see the module docs).
pub trait RecordApi: Send + Sync + 'static {
    /// Its grants and field rules.
    const RESOURCE: Resource;
    /// Plural, lower case, words joined by `-`: the path (`/api/v1/{COLLECTION}`), the OpenAPI
    /// tag, the export's file name and the operation ids (`list_{COLLECTION}`, `-` written `_`).
    const COLLECTION: &'static str;
    /// Singular, lower case: operation ids (`create_{ONE}`, `-` written `_`) and descriptions.
    const ONE: &'static str;
    /// With its article, for descriptions: "an account".
    const A_ONE: &'static str;
    /// Scopes a create passes on besides CREATE; READ at least, for the record it returns.
    const CREATE_ALSO: &'static [(Resource, Action)];
    /// Scopes an update passes on besides UPDATE: READ, and ASSIGN for moves.
    const UPDATE_ALSO: &'static [(Resource, Action)];
    /// Scopes a delete passes on besides DELETE.
    const DELETE_ALSO: &'static [(Resource, Action)];
    /// The columns of a CSV export, in order (hidden ones are dropped per caller).
    const EXPORT_COLUMNS: &'static [&'static str];

    /// The client of the owning service, taken from the router's state.
    type Upstream: Clone + Send + Sync + 'static;
    type Record: Serialize + ToSchema + Versioned + Send + Sync + 'static;
    type New: DeserializeOwned + ToSchema + Send + 'static;
    type Patch: DeserializeOwned + ToSchema + Send + 'static;
    /// A page: `{"items": [...], "next_page_token": …}`.
    type List: Serialize + ToSchema + Send + 'static;
    type ListParams: DeserializeOwned + IntoParams + Paged + Send + 'static;
    type ExportParams: DeserializeOwned + IntoParams + Exported + Send + 'static;

    fn create(
        upstream: &Self::Upstream,
        new: Self::New,
        access: &Access,
    ) -> impl Future<Output = Result<Self::Record>> + Send;

    fn list(
        upstream: &Self::Upstream,
        params: Self::ListParams,
        access: &Access,
    ) -> impl Future<Output = Result<Self::List>> + Send;

    fn get(
        upstream: &Self::Upstream,
        id: Uuid,
        access: &Access,
    ) -> impl Future<Output = Result<Self::Record>> + Send;

    /// Changes version `expected_version` of the record.
    fn update(
        upstream: &Self::Upstream,
        id: Uuid,
        expected_version: i64,
        patch: Self::Patch,
        access: &Access,
    ) -> impl Future<Output = Result<Self::Record>> + Send;

    /// Deletes the record; `expected_version` 0 means whatever version it has.
    fn delete(
        upstream: &Self::Upstream,
        id: Uuid,
        expected_version: i64,
        access: &Access,
    ) -> impl Future<Output = Result<()>> + Send;

    fn export(
        upstream: &Self::Upstream,
        params: Self::ExportParams,
        access: &Access,
    ) -> impl Future<Output = Result<RecordPages<Self::Record>>> + Send;
}

/// The six routes of `R`, guarded and documented.
pub fn routes<R, S>(security: &Security) -> OpenApiRouter<S>
where
    R: RecordApi,
    S: Clone + Send + Sync + 'static,
    R::Upstream: FromRef<S>,
{
    let read: &'static [(Resource, Action)] = &[];
    OpenApiRouter::new()
        .routes(security.permit(
            R::RESOURCE,
            Action::Create,
            R::CREATE_ALSO,
            security.idempotent(docs::create::<R, S>(post(create::<R>))),
        ))
        .routes(security.permit(
            R::RESOURCE,
            Action::Read,
            read,
            docs::list::<R, S>(get_method(list::<R>)),
        ))
        .routes(security.permit(
            R::RESOURCE,
            Action::Export,
            read,
            docs::export::<R, S>(get_method(export::<R>)),
        ))
        .routes(security.permit(
            R::RESOURCE,
            Action::Read,
            read,
            docs::get::<R, S>(get_method(get::<R>)),
        ))
        .routes(security.permit(
            R::RESOURCE,
            Action::Update,
            R::UPDATE_ALSO,
            docs::update::<R, S>(patch_method(update::<R>)),
        ))
        .routes(security.permit(
            R::RESOURCE,
            Action::Delete,
            R::DELETE_ALSO,
            docs::delete::<R, S>(delete_method(delete::<R>)),
        ))
}

async fn create<R: RecordApi>(
    State(upstream): State<R::Upstream>,
    Extension(access): Extension<Access>,
    ApiJson(body): ApiJson<R::New>,
) -> Result<Response> {
    let record = R::create(&upstream, body, &access).await?;
    Ok(created(
        &format!("/api/v1/{}/{}", R::COLLECTION, record.id()),
        record.version(),
        &visible(&record, &access, R::RESOURCE),
    ))
}

async fn list<R: RecordApi>(
    State(upstream): State<R::Upstream>,
    Extension(access): Extension<Access>,
    ApiQuery(params): ApiQuery<R::ListParams>,
) -> Result<Response> {
    check_page_size(params.page_size())?;
    let counted = params.include_total();
    let page = R::list(&upstream, params, &access).await?;
    let mut body = visible_list(&page, &access, R::RESOURCE);
    if !counted && let Some(fields) = body.as_object_mut() {
        // The service answers 0 when it was not asked to count: not a total, so not shown.
        fields.remove("total_size");
    }
    Ok(axum::Json(body).into_response())
}

async fn get<R: RecordApi>(
    State(upstream): State<R::Upstream>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
) -> Result<Response> {
    let record = R::get(&upstream, id, &access).await?;
    Ok(with_etag(
        StatusCode::OK,
        record.version(),
        &visible(&record, &access, R::RESOURCE),
    ))
}

async fn update<R: RecordApi>(
    State(upstream): State<R::Upstream>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<R::Patch>,
) -> Result<Response> {
    let expected_version = match if_match {
        IfMatch::Version(version) => version,
        // "Any version": the current one. Updates always name a version, so read it first.
        IfMatch::Any => R::get(&upstream, id, &access).await?.version(),
    };
    let record = R::update(&upstream, id, expected_version, patch, &access).await?;
    Ok(with_etag(
        StatusCode::OK,
        record.version(),
        &visible(&record, &access, R::RESOURCE),
    ))
}

async fn delete<R: RecordApi>(
    State(upstream): State<R::Upstream>,
    Extension(access): Extension<Access>,
    IdPath(id): IdPath,
    if_match: Option<IfMatch>,
) -> Result<Response> {
    let expected_version = if_match.map_or(0, IfMatch::expected_version);
    R::delete(&upstream, id, expected_version, &access).await?;
    Ok(no_content())
}

async fn export<R: RecordApi>(
    State(upstream): State<R::Upstream>,
    Extension(access): Extension<Access>,
    ApiQuery(params): ApiQuery<R::ExportParams>,
) -> Result<Response> {
    let format = params.format();
    let pages = R::export(&upstream, params, &access).await?;
    Ok(export::respond(
        pages,
        &access,
        R::RESOURCE,
        R::EXPORT_COLUMNS,
        format,
        R::COLLECTION,
    ))
}

/// The OpenAPI operations of the six routes, in the words the resource gives.
mod docs {
    use super::*;

    type Schemas = Vec<(String, RefOr<Schema>)>;

    /// `T`'s schema and the ones it refers to, for the document's components.
    fn schema_of<T: ToSchema>(schemas: &mut Schemas) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }

    fn json_ref<T: ToSchema>() -> utoipa::openapi::Content {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(T::name())))
            .build()
    }

    fn string_header(description: &str) -> utoipa::openapi::header::Header {
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(description))
            .build()
    }

    fn header_param(name: &str, required: bool, description: &str) -> ParameterBuilder {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(if required {
                Required::True
            } else {
                Required::False
            })
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
    }

    fn id_param<R: RecordApi>() -> ParameterBuilder {
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(format!("The {} id", R::ONE)))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(
                Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Uuid,
                )),
            )))
    }

    fn collection<R: RecordApi>() -> String {
        format!("/api/v1/{}", R::COLLECTION)
    }

    fn one<R: RecordApi>() -> String {
        format!("/api/v1/{}/{{id}}", R::COLLECTION)
    }

    fn operation<R: RecordApi>(
        id: String,
        summary: String,
        description: Option<String>,
    ) -> OperationBuilder {
        OperationBuilder::new()
            .tag(R::COLLECTION)
            // Paths take `follow-ups`; operation ids become names in generated clients.
            .operation_id(Some(id.replace('-', "_")))
            .summary(Some(summary))
            .description(description)
    }

    fn paths(path: String, method: HttpMethod, operation: OperationBuilder) -> Paths {
        PathsBuilder::new()
            .path(path, PathItem::new(method, operation.build()))
            .build()
    }

    const ETAG: &str = "Its version, for If-Match";

    pub fn create<R: RecordApi, S>(
        router: axum::routing::MethodRouter<S>,
    ) -> UtoipaMethodRouter<S> {
        let mut schemas = Schemas::new();
        schema_of::<R::New>(&mut schemas);
        schema_of::<R::Record>(&mut schemas);
        let op = operation::<R>(
            format!("create_{}", R::ONE),
            format!("Create {}.", R::A_ONE),
            Some(format!(
                "Send `Idempotency-Key` to make retries safe: a repeated request with the same \
                 key and body returns the first response (with `Idempotency-Replayed: true`) \
                 instead of a second {}.",
                R::ONE
            )),
        )
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_ref::<R::New>())
                .required(Some(Required::True))
                .build(),
        ))
        .parameter(header_param(
            "Idempotency-Key",
            false,
            "1 to 255 visible ASCII characters; makes retries of this request safe for 24 h",
        ))
        .response(
            "201",
            ResponseBuilder::new()
                .description(format!("The {} was created.", R::ONE))
                .content("application/json", json_ref::<R::Record>())
                .header(
                    "Location",
                    string_header(&format!("URL of the new {}", R::ONE)),
                )
                .header("ETag", string_header(ETAG))
                .header(
                    "Idempotency-Replayed",
                    string_header("`true` on a replayed response"),
                ),
        );
        (
            schemas,
            paths(collection::<R>(), HttpMethod::Post, op),
            router,
        )
    }

    pub fn list<R: RecordApi, S>(router: axum::routing::MethodRouter<S>) -> UtoipaMethodRouter<S> {
        let mut schemas = Schemas::new();
        schema_of::<R::List>(&mut schemas);
        let op = operation::<R>(
            format!("list_{}", R::COLLECTION),
            format!(
                "List {}, filtered and sorted, one page at a time.",
                R::COLLECTION
            ),
            None,
        )
        .parameters(Some(R::ListParams::into_params(|| {
            Some(ParameterIn::Query)
        })))
        .response(
            "200",
            ResponseBuilder::new()
                .description(format!("One page of {}.", R::COLLECTION))
                .content("application/json", json_ref::<R::List>()),
        );
        (
            schemas,
            paths(collection::<R>(), HttpMethod::Get, op),
            router,
        )
    }

    pub fn export<R: RecordApi, S>(
        router: axum::routing::MethodRouter<S>,
    ) -> UtoipaMethodRouter<S> {
        let op = operation::<R>(
            format!("export_{}", R::COLLECTION),
            format!("Export every {} you may export, as NDJSON or CSV.", R::ONE),
            Some(format!(
                "Takes the filters and sort of the list (no paging) and streams all matching {} \
                 in your export scope, with your field rules applied (hidden fields are left \
                 out, masked ones masked). A `200` body that ends abruptly was cut off by a \
                 failure: retry the export.",
                R::COLLECTION
            )),
        )
        .parameters(Some(R::ExportParams::into_params(|| {
            Some(ParameterIn::Query)
        })))
        .response(
            "200",
            ResponseBuilder::new()
                .description(format!("Every matching {} you may export.", R::ONE))
                .content("application/x-ndjson", ContentBuilder::new().build())
                .content("text/csv", ContentBuilder::new().build()),
        );
        (
            Vec::new(),
            paths(
                format!("/api/v1/{}/export", R::COLLECTION),
                HttpMethod::Get,
                op,
            ),
            router,
        )
    }

    pub fn get<R: RecordApi, S>(router: axum::routing::MethodRouter<S>) -> UtoipaMethodRouter<S> {
        let mut schemas = Schemas::new();
        schema_of::<R::Record>(&mut schemas);
        let op = operation::<R>(
            format!("get_{}", R::ONE),
            format!("Read one {}.", R::ONE),
            None,
        )
        .parameter(id_param::<R>())
        .response(
            "200",
            ResponseBuilder::new()
                .description(format!("The {}.", R::ONE))
                .content("application/json", json_ref::<R::Record>())
                .header("ETag", string_header(ETAG)),
        );
        (schemas, paths(one::<R>(), HttpMethod::Get, op), router)
    }

    pub fn update<R: RecordApi, S>(
        router: axum::routing::MethodRouter<S>,
    ) -> UtoipaMethodRouter<S> {
        let mut schemas = Schemas::new();
        schema_of::<R::Patch>(&mut schemas);
        schema_of::<R::Record>(&mut schemas);
        let op = operation::<R>(
            format!("update_{}", R::ONE),
            format!("Change some fields of {}.", R::A_ONE),
            Some(
                "Absent fields stay as they are; `null` clears an optional field. `If-Match` \
                 is required: the ETag of the version being changed (412 if it is no longer \
                 current), or `*`."
                    .into(),
            ),
        )
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_ref::<R::Patch>())
                .required(Some(Required::True))
                .build(),
        ))
        .parameter(id_param::<R>())
        .parameter(header_param(
            "If-Match",
            true,
            "ETag of the version being changed (`\"3\"` or `W/\"3\"`), or `*`",
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description(format!("The {} after the change.", R::ONE))
                .content("application/json", json_ref::<R::Record>())
                .header("ETag", string_header("Its new version")),
        );
        (schemas, paths(one::<R>(), HttpMethod::Patch, op), router)
    }

    pub fn delete<R: RecordApi, S>(
        router: axum::routing::MethodRouter<S>,
    ) -> UtoipaMethodRouter<S> {
        let op = operation::<R>(
            format!("delete_{}", R::ONE),
            format!(
                "Delete {} (soft: it disappears from reads and lists, its history stays).",
                R::A_ONE
            ),
            Some(
                "`If-Match` is optional; when given, the delete only happens if the version \
                 still matches."
                    .into(),
            ),
        )
        .parameter(id_param::<R>())
        .parameter(header_param(
            "If-Match",
            false,
            "When given: the ETag the record must still have, or `*`",
        ))
        .response(
            "204",
            ResponseBuilder::new().description(format!("The {} was deleted.", R::ONE)),
        );
        (
            Vec::new(),
            paths(one::<R>(), HttpMethod::Delete, op),
            router,
        )
    }
}
