//! Throwaway TLS for tests of the TLS settings: a certificate authority with a server
//! certificate for 127.0.0.1 and a client certificate, a Redis that speaks only TLS, and a TLS
//! front (terminator) for a broker that has no TLS listener of its own (Tansu).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{free_port, unique};

/// A CA and the certificates it signed, as PEM files in a directory of their own.
pub struct Pki {
    pub ca_file: PathBuf,
    pub server_cert_file: PathBuf,
    pub server_key_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

impl Pki {
    /// A new CA (`name` in its subject), a server certificate for `127.0.0.1` and `localhost`,
    /// and a client certificate, all signed by it.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(&format!("pki-{name}")));
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");

        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");

        let leaf = |sans: Vec<String>, usage: ExtendedKeyUsagePurpose, cn: &str| {
            let mut params = CertificateParams::new(sans).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &ca).expect("leaf certificate");
            (cert, key)
        };
        let (server, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            "127.0.0.1",
        );
        let (client, client_key) = leaf(
            vec!["crm-test-client".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            "crm-test-client",
        );

        let write = |file: &str, pem: String| {
            let path = dir.join(file);
            std::fs::write(&path, pem).expect("a certificate file");
            path
        };
        Self {
            ca_file: write("ca.pem", pem("CERTIFICATE", ca.der())),
            server_cert_file: write("server.pem", pem("CERTIFICATE", server.der())),
            server_key_file: write(
                "server-key.pem",
                pem("PRIVATE KEY", &server_key.serialize_der()),
            ),
            client_cert_file: write("client.pem", pem("CERTIFICATE", client.der())),
            client_key_file: write(
                "client-key.pem",
                pem("PRIVATE KEY", &client_key.serialize_der()),
            ),
            ca_der: ca.der().clone(),
            server_der: server.der().clone(),
            server_key_der: server_key.serialize_der(),
        }
    }

    /// The settings' view of these files: this CA, and the client certificate when `client`.
    pub fn tls_files(&self, client: bool) -> crm_settings::TlsFiles {
        crm_settings::TlsFiles {
            ca_file: Some(self.ca_file.clone()),
            client_cert: client.then(|| crm_settings::ClientCert {
                cert_file: self.client_cert_file.clone(),
                key_file: self.client_key_file.clone(),
            }),
        }
    }

    fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let builder = rustls::ServerConfig::builder();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).expect("CA as a root");
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        builder
            .with_single_cert(
                vec![self.server_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .expect("server certificate")
    }
}

/// `der` as a PEM block (RFC 7468); keys are PKCS#8, `PRIVATE KEY`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A `redis-server` (from PATH, as `./dev` installs it) listening only with TLS, on its own
/// port; killed on drop.
pub struct TlsRedis {
    pub port: u16,
    child: Child,
}

impl TlsRedis {
    /// Serves TLS with `pki`'s server certificate; with `require_client_cert`, only clients
    /// presenting a certificate signed by its CA get in.
    pub async fn start(pki: &Pki, require_client_cert: bool) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(&pki.server_cert_file)
            .arg("--tls-key-file")
            .arg(&pki.server_key_file)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca_file)
            .args([
                "--tls-auth-clients",
                if require_client_cert { "yes" } else { "no" },
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (./dev installs it)");
        wait_listening(port).await;
        Self { port, child }
    }

    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Terminates TLS on its own port and forwards the plain bytes to `target`, as a TLS listener
/// in front of a broker would. It runs on a thread and runtime of its own: a client that blocks
/// the test's runtime while it waits for the broker (librdkafka's synchronous commits) must not
/// also stop the broker's front. Stopped on drop.
pub struct TlsFront {
    pub port: u16,
    stop: tokio_util::sync::CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    /// Listens on `port` (see [`free_port`]) with `pki`'s server certificate.
    pub async fn start(
        pki: &Pki,
        port: u16,
        target: SocketAddr,
        require_client_cert: bool,
    ) -> Self {
        let acceptor =
            tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config(require_client_cert)));
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the TLS front");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the TLS front");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let inbound = tokio::select! {
                        _ = stopped.cancelled() => return,
                        accepted = listener.accept() => match accepted {
                            Ok((inbound, _)) => inbound,
                            Err(_) => return,
                        },
                    };
                    let acceptor = acceptor.clone();
                    let stopped = stopped.clone();
                    tokio::spawn(async move {
                        // A refused handshake (wrong CA, no client certificate) just closes.
                        let Ok(mut tls) = acceptor.accept(inbound).await else {
                            return;
                        };
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = stopped.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound) => {}
                        }
                    });
                }
            });
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
