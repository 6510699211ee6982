//! TLS for the ACS listener: certificate management and real handshakes.

use std::path::Path;
use std::sync::Arc;

use keelson::tls::{load_or_generate, server_config, CertSource, CertifiedKeyPaths, TlsError};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_der(path: &Path) -> CertificateDer<'static> {
    let pem = std::fs::read(path).unwrap();
    let first = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    first
}

/// A client trusting exactly `root`, optionally presenting a certificate.
fn client_config(
    root: CertificateDer<'static>,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(root).unwrap();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg
}

/// What the server side saw of one connection.
struct ServerView {
    /// The client presented a certificate that rustls verified.
    client_cert: bool,
}

/// Serve one connection: read "ping", answer "pong".
async fn serve_once(listener: TcpListener, cfg: ServerConfig) -> Result<ServerView, String> {
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    assert_eq!(&buf, b"ping");
    tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
    tls.shutdown().await.map_err(|e| e.to_string())?;
    Ok(ServerView { client_cert })
}

/// Handshake and ping-pong as a client. Returns the server's certificate,
/// the negotiated ALPN and protocol version.
async fn ping(
    addr: std::net::SocketAddr,
    cfg: ClientConfig,
    name: &str,
) -> Result<
    (
        CertificateDer<'static>,
        Option<Vec<u8>>,
        rustls::ProtocolVersion,
    ),
    String,
> {
    let connector = TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    assert_eq!(&buf, b"pong");
    let conn = tls.get_ref().1;
    Ok((
        conn.peer_certificates().unwrap()[0].clone().into_owned(),
        conn.alpn_protocol().map(<[u8]>::to_vec),
        conn.protocol_version().unwrap(),
    ))
}

async fn round_trip(
    server: ServerConfig,
    client: ClientConfig,
    name: &str,
) -> (
    Result<ServerView, String>,
    Result<
        (
            CertificateDer<'static>,
            Option<Vec<u8>>,
            rustls::ProtocolVersion,
        ),
        String,
    >,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_once(listener, server));
    let client = ping(addr, client, name).await;
    (server.await.unwrap(), client)
}

#[test]
fn generates_then_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = vec!["acs.example.net".to_owned()];
    let first = load_or_generate(None, None, dir.path(), &hosts).unwrap();
    assert_eq!(first.source, CertSource::Generated);
    assert_eq!(first.cert, dir.path().join("tls/cert.pem"));
    assert_eq!(first.key, dir.path().join("tls/key.pem"));
    let cert_bytes = std::fs::read(&first.cert).unwrap();
    let key_bytes = std::fs::read(&first.key).unwrap();
    assert!(String::from_utf8_lossy(&cert_bytes).starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(String::from_utf8_lossy(&key_bytes).contains("PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&first.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(dir.path().join("tls"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    let second = load_or_generate(None, None, dir.path(), &hosts).unwrap();
    assert_eq!(second.source, CertSource::Reused);
    assert_eq!((&second.cert, &second.key), (&first.cert, &first.key));
    assert_eq!(std::fs::read(&second.cert).unwrap(), cert_bytes);
    assert_eq!(std::fs::read(&second.key).unwrap(), key_bytes);

    // A half-written pair is replaced.
    std::fs::remove_file(&first.cert).unwrap();
    let third = load_or_generate(None, None, dir.path(), &hosts).unwrap();
    assert_eq!(third.source, CertSource::Generated);
    assert_ne!(std::fs::read(&third.key).unwrap(), key_bytes);
}

#[test]
fn configured_pair_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["configured.example".to_owned()]).unwrap();
    let cert = dir.path().join("my-cert.pem");
    let key = dir.path().join("my-key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let data = dir.path().join("data");

    let paths = load_or_generate(Some(&cert), Some(&key), &data, &[]).unwrap();
    assert_eq!(
        paths,
        CertifiedKeyPaths {
            cert: cert.clone(),
            key: key.clone(),
            source: CertSource::Configured,
        }
    );
    assert!(!data.join("tls").exists(), "nothing generated");
    assert!(server_config(&paths, None, false).is_ok());

    assert!(matches!(
        load_or_generate(Some(&cert), None, &data, &[]),
        Err(TlsError::IncompletePair("certificate"))
    ));
    assert!(matches!(
        load_or_generate(None, Some(&key), &data, &[]),
        Err(TlsError::IncompletePair("key"))
    ));
    let missing = dir.path().join("missing.pem");
    assert!(matches!(
        load_or_generate(Some(&missing), Some(&key), &data, &[]),
        Err(TlsError::Io { .. })
    ));
    // Swapped files: no certificate in the key file.
    assert!(matches!(
        load_or_generate(Some(&key), Some(&cert), &data, &[]),
        Err(TlsError::NoCertificate(_))
    ));
    // A key that does not belong to the certificate.
    let other = KeyPair::generate().unwrap();
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, other.serialize_pem()).unwrap();
    let mismatched = load_or_generate(Some(&cert), Some(&other_key), &data, &[]).unwrap();
    assert!(matches!(
        server_config(&mismatched, None, false),
        Err(TlsError::Rustls(_))
    ));
}

#[tokio::test]
async fn configured_pair_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["configured.example".to_owned()]).unwrap();
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("k.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let paths = load_or_generate(Some(&cert), Some(&key), dir.path(), &[]).unwrap();
    let server = server_config(&paths, None, false).unwrap();
    let client = client_config(ck.cert.der().clone(), None, rustls::DEFAULT_VERSIONS);
    let (s, c) = round_trip(server, client, "configured.example").await;
    s.unwrap();
    let (served, _, _) = c.unwrap();
    assert_eq!(&served, ck.cert.der());
}

#[tokio::test]
async fn handshake_with_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = vec!["acs.example.net".to_owned()];
    let paths = load_or_generate(None, None, dir.path(), &hosts).unwrap();
    let root = pem_der(&paths.cert);

    // The certificate verifies for every SAN, with TLS 1.3 and TLS 1.2.
    for (name, versions) in [
        ("acs.example.net", &[&rustls::version::TLS13][..]),
        ("localhost", &[&rustls::version::TLS12][..]),
        ("127.0.0.1", rustls::DEFAULT_VERSIONS),
    ] {
        let server = server_config(&paths, None, false).unwrap();
        let client = client_config(root.clone(), None, versions);
        let (s, c) = round_trip(server, client, name).await;
        let view = s.unwrap_or_else(|e| panic!("{name}: server: {e}"));
        assert!(!view.client_cert);
        let (served, alpn, version) = c.unwrap_or_else(|e| panic!("{name}: client: {e}"));
        assert_eq!(served, root);
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        if versions.len() == 1 {
            assert_eq!(version, versions[0].version);
        }
    }

    // A name not in the certificate is refused by a verifying client.
    let server = server_config(&paths, None, false).unwrap();
    let client = client_config(root, None, rustls::DEFAULT_VERSIONS);
    let (_, c) = round_trip(server, client, "other.example").await;
    assert!(c.is_err());
}

/// A CA, a CPE certificate it issued, and the CA bundle on disk.
struct Pki {
    ca_pem: std::path::PathBuf,
    cpe_cert: CertificateDer<'static>,
    cpe_key: PrivateKeyDer<'static>,
    rogue_cert: CertificateDer<'static>,
    rogue_key: PrivateKeyDer<'static>,
}

fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Keelson test CPE CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let ca_pem = dir.join("cpe-ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();

    let mut cpe_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    cpe_params.distinguished_name = rcgen::DistinguishedName::new();
    cpe_params
        .distinguished_name
        .push(DnType::OrganizationName, "Example CPE vendor");
    cpe_params
        .distinguished_name
        .push(DnType::CommonName, "001A2B-HGW1000-SN0123456789");
    cpe_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cpe_key = KeyPair::generate().unwrap();
    let cpe = cpe_params.signed_by(&cpe_key, &ca, &ca_key).unwrap();

    let rogue = rcgen::generate_simple_self_signed(vec!["rogue".to_owned()]).unwrap();
    Pki {
        ca_pem,
        cpe_cert: cpe.der().clone(),
        cpe_key: PrivateKeyDer::Pkcs8(cpe_key.serialize_der().into()),
        rogue_cert: rogue.cert.der().clone(),
        rogue_key: PrivateKeyDer::Pkcs8(rogue.key_pair.serialize_der().into()),
    }
}

#[tokio::test]
async fn client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let paths = load_or_generate(None, None, dir.path(), &[]).unwrap();
    let root = pem_der(&paths.cert);
    let pki = pki(dir.path());

    // Required: a client without a certificate fails.
    let server = server_config(&paths, Some(&pki.ca_pem), true).unwrap();
    let client = client_config(root.clone(), None, rustls::DEFAULT_VERSIONS);
    let (s, c) = round_trip(server, client, "localhost").await;
    assert!(s.is_err(), "server must refuse the handshake");
    assert!(c.is_err(), "client must see the failure");

    // Required, TLS 1.2: same.
    let server = server_config(&paths, Some(&pki.ca_pem), true).unwrap();
    let client = client_config(root.clone(), None, &[&rustls::version::TLS12]);
    let (s, c) = round_trip(server, client, "localhost").await;
    assert!(s.is_err() && c.is_err());

    // Required: a certificate from another issuer fails.
    let server = server_config(&paths, Some(&pki.ca_pem), true).unwrap();
    let client = client_config(
        root.clone(),
        Some((pki.rogue_cert.clone(), pki.rogue_key.clone_key())),
        rustls::DEFAULT_VERSIONS,
    );
    let (s, c) = round_trip(server, client, "localhost").await;
    assert!(s.is_err() && c.is_err());

    // Required: the CPE's certificate works and names the CPE.
    let server = server_config(&paths, Some(&pki.ca_pem), true).unwrap();
    let client = client_config(
        root.clone(),
        Some((pki.cpe_cert.clone(), pki.cpe_key.clone_key())),
        rustls::DEFAULT_VERSIONS,
    );
    let (s, c) = round_trip(server, client, "localhost").await;
    c.unwrap();
    assert!(
        s.unwrap().client_cert,
        "the CA-issued client certificate was verified"
    );

    // Optional: no certificate is fine (HTTP auth takes over).
    let server = server_config(&paths, Some(&pki.ca_pem), false).unwrap();
    let client = client_config(root.clone(), None, rustls::DEFAULT_VERSIONS);
    let (s, c) = round_trip(server, client, "localhost").await;
    c.unwrap();
    assert!(!s.unwrap().client_cert);

    // Required without a CA bundle is a configuration error.
    assert!(matches!(
        server_config(&paths, None, true),
        Err(TlsError::ClientCaRequired)
    ));
}
