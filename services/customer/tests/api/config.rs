//! The `crm-customer` process refuses to start on TLS (or call-key) settings that cannot work, naming the key
//! (a pod in CrashLoopBackOff with the reason in its log), instead of running without its cache
//! or its event relay.

use std::process::Command;

/// Runs the binary with `env` and returns its exit status and output (it must stop by itself).
fn start(env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_crm-customer"))
        .env("CRM_ENVIRONMENT", "local")
        .env("CRM__SERVER__GRPC_PORT", "0")
        .env("CRM__SERVER__HTTP_PORT", "0")
        .env(
            "CRM__DATABASE__URL",
            "postgres://postgres@127.0.0.1:1/unused",
        )
        .env(
            "CRM__IDENTITY__SIGNING_KEY",
            crm_testkit::identity::service_key("customer").to_pkcs8_pem(),
        )
        .envs(env.iter().copied())
        .output()
        .expect("crm-customer runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status, text)
}

#[test]
fn tls_settings_that_cannot_work_stop_the_start_with_the_key() {
    let ca = std::env::temp_dir().join(crm_testkit::unique("ca.pem"));
    std::fs::write(&ca, "").unwrap();
    let ca = ca.to_str().unwrap();
    for (env, expected) in [
        (
            vec![
                ("CRM__REDIS__URL", "redis://127.0.0.1:6379"),
                ("CRM__REDIS__TLS__CA_FILE", ca),
            ],
            "redis.url is not rediss://",
        ),
        (
            vec![
                ("CRM__REDIS__URL", "rediss://127.0.0.1:6379"),
                ("CRM__REDIS__TLS__CA_FILE", "/nonexistent/ca.pem"),
            ],
            "redis.tls.ca_file",
        ),
        (
            vec![
                ("CRM__REDIS__URL", "rediss://127.0.0.1:6379"),
                ("CRM__REDIS__TLS__CERT_FILE", ca),
            ],
            "without tls.key_file",
        ),
        (
            vec![
                ("CRM__KAFKA__SECURITY__PROTOCOL", "ssl"),
                ("CRM__KAFKA__SECURITY__TLS__CA_FILE", "/nonexistent/ca.pem"),
            ],
            "ssl.ca.location",
        ),
        (
            vec![("CRM__KAFKA__SECURITY__PROTOCOL", "sasl_ssl")],
            "needs kafka.security.sasl",
        ),
        // Not TLS, but the same rule: without its call key it could not fetch a large scope.
        (
            vec![("CRM__IDENTITY__SIGNING_KEY", "")],
            "identity.signing_key",
        ),
    ] {
        let (status, output) = start(&env);
        assert!(!status.success(), "{env:?} started");
        assert!(output.contains(expected), "{env:?}: {output}");
    }
}
