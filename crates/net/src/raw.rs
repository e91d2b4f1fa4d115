//! A second handle on an endpoint's UDP socket, for the few datagrams a client sends outside
//! QUIC: a hole punch and a relay bind ([`switchboard_proto::relay`]).
//!
//! Both must leave from the very socket the client's QUIC connections use, so that the NAT
//! mapping they open is the one those connections will travel. iroh routes all of its traffic
//! through its own `AsyncUdpSocket` to do this; we only need to *send* a few datagrams, never
//! to sort what arrives (quinn drops both kinds, whose first byte lacks QUIC's fixed bit), so a
//! duplicated file descriptor of the socket quinn owns is enough: no wrapper in quinn's receive
//! path, nothing to keep in step with quinn's socket options.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// A cloned handle on an endpoint's UDP socket, for sending only.
#[derive(Debug, Clone)]
pub struct RawSocket(Arc<std::net::UdpSocket>);

impl RawSocket {
    /// Binds a UDP socket at `addr` and returns it for quinn with a second handle on it.
    pub fn bind(addr: SocketAddr) -> io::Result<(std::net::UdpSocket, Self)> {
        let socket = std::net::UdpSocket::bind(addr)?;
        let raw = socket.try_clone()?;
        Ok((socket, Self(Arc::new(raw))))
    }

    /// Sends `datagram` to `to`. The socket is non-blocking (quinn made it so): a full send
    /// buffer is an error, and these datagrams are each one of several.
    pub fn send(&self, to: SocketAddr, datagram: &[u8]) -> io::Result<()> {
        self.0.send_to(datagram, to).map(|_| ())
    }

    /// Sends `datagram` to `to` with at most `hops` router hops (the IP TTL): a punch needs to
    /// leave through this host's own NAT, and must die before it reaches the peer's (where it
    /// would only create a mapping the peer's own packets then clash with; see
    /// `switchboard_client::traverse`). The TTL is the socket's, set for this send and put
    /// back: a QUIC packet quinn sends in that instant goes out with it too, and is resent if
    /// it is lost.
    pub fn send_with_hops(&self, to: SocketAddr, datagram: &[u8], hops: u32) -> io::Result<()> {
        let socket = socket2::SockRef::from(&*self.0);
        if to.is_ipv6() {
            let before = socket.unicast_hops_v6()?;
            socket.set_unicast_hops_v6(hops)?;
            let sent = self.send(to, datagram);
            socket.set_unicast_hops_v6(before)?;
            sent
        } else {
            let before = self.0.ttl()?;
            self.0.set_ttl(hops)?;
            let sent = self.send(to, datagram);
            self.0.set_ttl(before)?;
            sent
        }
    }
}

/// A quinn endpoint on `socket` (from [`RawSocket::bind`]), serving `server` when given.
pub fn endpoint_on(
    socket: std::net::UdpSocket,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
}
