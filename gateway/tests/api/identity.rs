//! Verified identities on every gRPC call (ADR 0012), tried as an attacker inside the cluster
//! would: straight at the services' ports, past the gateway, for every method the descriptor
//! set defines. Health and reflection stay open; reflection lists only what a port serves.

use std::time::{Duration, SystemTime};

use crm_access::Access;
use crm_identity::{REFUSED, Signer, SigningKey};
use prost::Message;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::helpers::spawn_app;

/// One method of a service, and where it is served.
struct Method {
    path: String,
    server_streaming: bool,
    endpoint: String,
    audience: &'static str,
}

/// Every method of every service in the descriptor set, with the port that serves it.
fn methods(customer: &str, permission: &str) -> Vec<Method> {
    let set = prost_types::FileDescriptorSet::decode(crm_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in set.file {
        let package = file.package().to_string();
        for service in &file.service {
            let (endpoint, audience) = match package.as_str() {
                // Custom fields are served by each owning service; the customer service is the
                // only one with entities yet.
                "crm.customer.v1" | "crm.fields.v1" => (customer, "customer"),
                "crm.permission.v1" => (permission, "permission"),
                other => panic!("{other}.{}: which service serves it?", service.name()),
            };
            for method in &service.method {
                methods.push(Method {
                    path: format!("/{package}.{}/{}", service.name(), method.name()),
                    server_streaming: method.server_streaming(),
                    endpoint: endpoint.to_string(),
                    audience,
                });
            }
        }
    }
    methods
}

/// Calls `method` with an empty request (every field at its default) and the given token and
/// access context; the status it ends with (OK when it answered).
async fn call(method: &Method, token: Option<&str>, access: Option<&Access>) -> tonic::Status {
    let channel = Channel::from_shared(method.endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request.metadata_mut().insert(
            crm_identity::TOKEN_METADATA,
            MetadataValue::try_from(token).unwrap(),
        );
    }
    if let Some(access) = access {
        access.to_metadata(request.metadata_mut());
    }
    let path = PathAndQuery::try_from(method.path.as_str()).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let result = if method.server_streaming {
        match grpc.server_streaming(request, path, codec).await {
            Ok(response) => response.into_inner().message().await.map(|_| ()),
            Err(status) => Err(status),
        }
    } else {
        grpc.unary(request, path, codec).await.map(|_| ())
    };
    result.err().unwrap_or_else(|| tonic::Status::ok(""))
}

/// The `crm-access-bin` value `access` travels as.
fn header(access: &Access) -> Vec<u8> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    access.to_metadata(&mut metadata);
    metadata
        .get_bin(crm_access::METADATA_KEY)
        .unwrap()
        .as_encoded_bytes()
        .to_vec()
}

fn refused(status: &tonic::Status) -> bool {
    status.code() == Code::Unauthenticated && status.message().starts_with(REFUSED)
}

#[tokio::test]
async fn every_rpc_of_every_service_refuses_missing_forged_expired_and_misdirected_identities() {
    let app = spawn_app().await;
    let customer = app.settings.services["customer"].clone();
    let permission = app.settings.services["permission"].clone();
    let methods = methods(&customer, &permission);
    assert!(methods.len() > 50, "{} methods", methods.len());

    let now = SystemTime::now();
    let ttl = Duration::from_secs(60);
    let gateway = Signer::new("gateway", crm_testkit::identity::gateway_key(), ttl);
    let stranger = Signer::new("gateway", SigningKey::generate().unwrap(), ttl);
    // What an attacker would claim: everything, as the admin.
    let everything = Access::system(app.user_id);
    let everything_header = header(&everything);
    let narrow = Access::new(app.user_id);
    let narrow_header = header(&narrow);
    let gateway_grants = crm_identity::Verifier::from_settings(
        &crm_testkit::identity::trusting_tests(crm_permission::Settings::default_identity()),
    )
    .unwrap();

    let mut checked = 0;
    for m in &methods {
        let other = if m.audience == "customer" {
            "permission"
        } else {
            "customer"
        };
        let cases: Vec<(&str, Option<String>, Option<&Access>)> = vec![
            ("no token, a forged context", None, Some(&everything)),
            ("no token, no context", None, None),
            (
                "a token from an unknown key",
                Some(stranger.token(m.audience, &m.path, Some(&everything_header), now)),
                Some(&everything),
            ),
            (
                "an expired token",
                Some(gateway.token(
                    m.audience,
                    &m.path,
                    Some(&everything_header),
                    now - Duration::from_secs(600),
                )),
                Some(&everything),
            ),
            (
                "a token minted for another service",
                Some(gateway.token(other, &m.path, Some(&everything_header), now)),
                Some(&everything),
            ),
            (
                "a token for a narrow context, sent with a wide one",
                Some(gateway.token(m.audience, &m.path, Some(&narrow_header), now)),
                Some(&everything),
            ),
            (
                "a token for another method",
                Some(gateway.token(
                    m.audience,
                    "/crm.customer.v1.CustomerService/NoSuchMethod",
                    Some(&everything_header),
                    now,
                )),
                Some(&everything),
            ),
        ];
        for (case, token, access) in cases {
            let status = call(m, token.as_deref(), access).await;
            assert!(refused(&status), "{} with {case}: {status:?}", m.path);
            checked += 1;
        }

        // The control: the same call with a valid token gets past the check (whatever the
        // handler makes of an empty request), so the refusals above are the check's.
        let valid = gateway.token(m.audience, &m.path, Some(&everything_header), now);
        let status = call(m, Some(&valid), Some(&everything)).await;
        assert!(
            !refused(&status),
            "{} with a valid token: {status:?}",
            m.path
        );

        // The gateway as itself: only the methods it was granted.
        let as_itself = gateway.token(m.audience, &m.path, None, now);
        let status = call(m, Some(&as_itself), None).await;
        let granted = m.audience == "permission"
            && gateway_grants
                .verify(&m.path, Some(as_itself.as_bytes()), None, SystemTime::now())
                .is_ok();
        assert_eq!(
            !refused(&status),
            granted,
            "{} as the gateway itself: {status:?}",
            m.path
        );
    }
    println!("{} methods, {checked} refused calls", methods.len());
    app.shutdown().await;
}

/// The services a port lists through reflection.
async fn listed(endpoint: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let channel = Channel::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection needs no token")
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

#[tokio::test]
async fn health_and_reflection_stay_open_and_reflection_lists_only_what_a_port_serves() {
    let app = spawn_app().await;
    let open = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ];
    let mut customer: Vec<String> = open
        .iter()
        .map(|s| s.to_string())
        .chain([
            "crm.customer.v1.CustomerService".to_string(),
            "crm.fields.v1.FieldService".to_string(),
        ])
        .collect();
    customer.sort();
    assert_eq!(listed(&app.settings.services["customer"]).await, customer);

    let mut permission: Vec<String> = open
        .iter()
        .map(|s| s.to_string())
        .chain(crm_permission::SERVICE_NAMES.iter().map(|s| s.to_string()))
        .collect();
    permission.sort();
    let listed_permission = listed(&app.settings.services["permission"]).await;
    assert_eq!(listed_permission, permission);
    assert!(
        !listed_permission.iter().any(|s| s.contains("customer")),
        "{listed_permission:?}"
    );

    // Health answers without a token (the kubelet's probe and the gateway's balancer).
    let channel = Channel::from_shared(app.settings.services["customer"].clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health needs no token")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    app.shutdown().await;
}
