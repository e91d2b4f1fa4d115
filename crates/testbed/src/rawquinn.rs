//! Plain quinn, the baseline of `testbed cpu`'s reconnect storm: a server process
//! (`testbed exec raw-quinn`) that completes the same handshakes as a supernode (TLS 1.3, a
//! self-signed ECDSA certificate the client trusts, no client certificate, no ticket) and
//! answers two frames per connection with canned answers, and the client side of one attempt.
//! Nothing is verified or stored: what a directory costs beyond its transport is the
//! difference.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use switchboard_net::config::Role as TransportRole;
use switchboard_proto::version::ALPN_DIRECTORY;

/// The canned answers' sizes: a `Welcome` and a `Registered` frame are about this long.
const ANSWERS: [usize; 2] = [96, 48];
/// The largest request frame the server reads.
const MAX_REQUEST: usize = 64 * 1024;

/// `testbed exec raw-quinn`: serves on 127.0.0.1 until killed; prints `cert HEX` and then
/// `listening on ADDR`.
pub fn serve() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("raw-quinn: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(accept_loop()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raw-quinn: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn accept_loop() -> anyhow::Result<()> {
    let (config, cert) = server_config()?;
    let endpoint = quinn::Endpoint::server(config, SocketAddr::from(([127, 0, 0, 1], 0)))?;
    println!("cert {}", to_hex(&cert));
    println!("listening on {}", endpoint.local_addr()?);
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            let Ok((mut send, mut recv)) = connection.accept_bi().await else {
                return;
            };
            for size in ANSWERS {
                let mut header = [0u8; 4];
                if recv.read_exact(&mut header).await.is_err() {
                    return;
                }
                let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
                let mut payload = vec![0u8; len.min(MAX_REQUEST)];
                if recv.read_exact(&mut payload).await.is_err() {
                    return;
                }
                if send.write_all(&vec![0u8; size]).await.is_err() {
                    return;
                }
            }
            // The client closes.
            connection.closed().await;
        });
    }
    Ok(())
}

/// One attempt of the storm against plain quinn: a new connection, a request of `hello`
/// bytes and one of `register` bytes (the sizes of ours), each answered, then closed.
pub async fn attempt(
    endpoint: &quinn::Endpoint,
    config: quinn::ClientConfig,
    server: SocketAddr,
    hello: usize,
    register: usize,
) -> anyhow::Result<()> {
    let connection = endpoint.connect_with(config, server, "localhost")?.await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    for (request, answer) in [hello, register].into_iter().zip(ANSWERS) {
        let len = u32::try_from(request).context("request size")?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.resize(4 + request, 0);
        send.write_all(&frame).await?;
        let mut buffer = vec![0u8; answer];
        recv.read_exact(&mut buffer).await?;
    }
    connection.close(0u32.into(), b"again");
    Ok(())
}

/// A plain quinn server: TLS 1.3, a self-signed ECDSA P-256 certificate for `localhost`, no
/// client certificate, our ALPN and transport parameters; with the certificate (DER) for the
/// client ([`client_config`]).
fn server_config() -> anyhow::Result<(quinn::ServerConfig, Vec<u8>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    tls.alpn_protocols = vec![ALPN_DIRECTORY.to_vec()];
    let mut server =
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(Arc::new(tls))?));
    server.transport_config(Arc::new(switchboard_net::transport_config(
        TransportRole::ClientFacing,
    )));
    Ok((server, cert.der().to_vec()))
}

/// A plain quinn client that trusts the certificate `cert` (DER) of [`server_config`]'s
/// server; no resumption, so that every connection is a full handshake.
pub fn client_config(cert: &[u8]) -> anyhow::Result<quinn::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(cert.to_vec()))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN_DIRECTORY.to_vec()];
    tls.resumption = rustls::client::Resumption::disabled();
    let mut client = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(Arc::new(tls))?));
    client.transport_config(Arc::new(switchboard_net::transport_config(
        TransportRole::Dialer,
    )));
    Ok(client)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of `text`, written as [`to_hex`] writes them.
pub fn from_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return Err(anyhow!("odd hex length"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| anyhow!("not hex"))
        })
        .collect()
}
