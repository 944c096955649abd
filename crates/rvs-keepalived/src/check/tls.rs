//! The TLS side of SSL_GET: a client that, like keepalived by default,
//! does not verify the server's certificate (a health check asks "does
//! the service answer", not "is this the right server"; real servers
//! commonly carry certificates for the VIP's name, or self-signed ones).
//!
//! rustls with the `ring` provider; TLS 1.2 and 1.3. The SNI name is the
//! Host's name when it is a DNS name; an address sends no SNI.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Accepts any certificate; handshake signatures are still checked, so
/// the session is a real TLS session with whoever answered.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The one client configuration every SSL_GET shares.
fn connector() -> Result<TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    let cfg = CONFIG.get_or_init(|| {
        let provider: CryptoProvider = rustls::crypto::ring::default_provider();
        let algs = provider.signature_verification_algorithms;
        let cfg = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(algs)))
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    });
    cfg.clone().map(TlsConnector::from)
}

/// The SNI name for a Host header value (`name`, `name:port`, `IP:port`,
/// `[v6]:port`).
pub(crate) fn server_name(host: &str) -> ServerName<'static> {
    if let Ok(sa) = host.parse::<SocketAddr>() {
        return ServerName::IpAddress(sa.ip().into());
    }
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return ServerName::IpAddress(ip.into());
    }
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    ServerName::try_from(name.to_string())
        .unwrap_or_else(|_| ServerName::IpAddress(IpAddr::from([0, 0, 0, 0]).into()))
}

/// Runs the TLS handshake on `tcp` for `host`.
pub(crate) async fn handshake(tcp: TcpStream, host: &str) -> Result<TlsStream<TcpStream>, String> {
    connector()?
        .connect(server_name(host), tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_names() {
        assert!(matches!(
            server_name("10.0.0.1:443"),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[fd00::1]:443"),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(server_name("fd00::1"), ServerName::IpAddress(_)));
        match server_name("www.example.com:8443") {
            ServerName::DnsName(n) => assert_eq!(n.as_ref(), "www.example.com"),
            other => panic!("{other:?}"),
        }
        match server_name("www.example.com") {
            ServerName::DnsName(n) => assert_eq!(n.as_ref(), "www.example.com"),
            other => panic!("{other:?}"),
        }
    }
}
