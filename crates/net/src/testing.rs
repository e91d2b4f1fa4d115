//! Baselines for benchmarks: plain quinn configured the ordinary way, to compare our
//! transport against in the same run. Compiled only with the `testing` feature, which only
//! dev-dependencies enable (the benchmarks of `net` and `supernode`): no daemon contains it.

// Benchmark set-up: a failure here is a broken benchmark, and stopping is right.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use switchboard_proto::version::ALPN_DIRECTORY;

use crate::config::{transport_config, Role as TransportRole};

/// Plain quinn configurations for both sides: server-only authentication (a self-signed
/// certificate the client trusts), or standard mutual TLS under a throwaway CA; ECDSA P-256
/// keys, webpki verification, no resumption. Panics on failure: benchmark set-up only.
pub fn raw_quinn_configs(mutual: bool) -> (quinn::ServerConfig, quinn::ClientConfig) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der =
        |key: &KeyPair| rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).expect("benchmark baseline configuration");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(
        ca_params,
        KeyPair::generate().expect("benchmark baseline configuration"),
    )
    .expect("benchmark baseline configuration");
    let mut roots = rustls::RootCertStore::empty();
    let server_key = KeyPair::generate().expect("benchmark baseline configuration");
    let server_params = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("benchmark baseline configuration");
    let server_cert = if mutual {
        roots
            .add(ca.der().clone())
            .expect("benchmark baseline configuration");
        server_params
            .signed_by(&server_key, &ca)
            .expect("benchmark baseline configuration")
    } else {
        let cert = server_params
            .self_signed(&server_key)
            .expect("benchmark baseline configuration");
        roots
            .add(cert.der().clone())
            .expect("benchmark baseline configuration");
        cert
    };
    let roots = Arc::new(roots);

    let server_builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("benchmark baseline configuration");
    let server_builder = if mutual {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&roots),
            Arc::clone(&provider),
        )
        .build()
        .expect("benchmark baseline configuration");
        server_builder.with_client_cert_verifier(verifier)
    } else {
        server_builder.with_no_client_auth()
    };
    let mut server_tls = server_builder
        .with_single_cert(vec![server_cert.der().clone()], key_der(&server_key))
        .expect("benchmark baseline configuration");
    server_tls.alpn_protocols = vec![ALPN_DIRECTORY.to_vec()];
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(
        QuicServerConfig::try_from(Arc::new(server_tls)).expect("benchmark baseline configuration"),
    ));
    server.transport_config(Arc::new(transport_config(TransportRole::ClientFacing)));

    let client_builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("benchmark baseline configuration")
        .with_root_certificates(roots);
    let mut client_tls = if mutual {
        let client_key = KeyPair::generate().expect("benchmark baseline configuration");
        let client_cert = CertificateParams::new(vec!["client".to_owned()])
            .expect("benchmark baseline configuration")
            .signed_by(&client_key, &ca)
            .expect("benchmark baseline configuration");
        client_builder
            .with_client_auth_cert(vec![client_cert.der().clone()], key_der(&client_key))
            .expect("benchmark baseline configuration")
    } else {
        client_builder.with_no_client_auth()
    };
    client_tls.alpn_protocols = vec![ALPN_DIRECTORY.to_vec()];
    client_tls.resumption = rustls::client::Resumption::disabled();
    let mut client = quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(Arc::new(client_tls)).expect("benchmark baseline configuration"),
    ));
    client.transport_config(Arc::new(transport_config(TransportRole::Dialer)));
    (server, client)
}
