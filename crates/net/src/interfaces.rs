//! Which addresses a node tells its peers to dial.
//!
//! A socket bound to one address is reached there. A socket bound to the unspecified address
//! (`0.0.0.0`, `[::]`) is reached on any of the host's addresses, and the node must say which:
//! quinn cannot tell which local address a connection arrived on without `IP_PKTINFO`, and
//! falling back to `127.0.0.1` published an address no other host can dial (issue #13). The
//! host's interfaces are read with the `if-addrs` crate (`getifaddrs` on Unix); loopback and
//! link-local addresses are left out (a link-local IPv6 address needs the peer's interface
//! index), unless the host has nothing else.

use std::net::{IpAddr, SocketAddr};

/// The addresses to publish for a socket bound to `local`, at most `max`: `local` itself when
/// it names an address; for an unspecified one, `preferred` first (the local address of a
/// connection that reached a supernode, when known), then the host's other usable addresses of
/// `local`'s family (both families for `[::]`, which Linux binds dual-stack), all on `local`'s
/// port.
pub fn published(local: SocketAddr, preferred: Option<IpAddr>, max: usize) -> Vec<SocketAddr> {
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let host: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|interfaces| interfaces.iter().map(if_addrs::Interface::ip).collect())
        .unwrap_or_default();
    choose(local, preferred, &host, max)
}

/// The local address this host would send from towards `peer`: a UDP socket connected to it
/// (`connect` on UDP sends nothing; the kernel only picks the route and source address). This
/// puts the interface that reaches the supernode first among the published addresses, ahead of
/// a container bridge or a VPN interface that other hosts cannot reach.
pub fn route_source(peer: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if peer.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(peer).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// [`published`] over the host addresses `host`; see there.
pub fn choose(
    local: SocketAddr,
    preferred: Option<IpAddr>,
    host: &[IpAddr],
    max: usize,
) -> Vec<SocketAddr> {
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let family_ok = |ip: &IpAddr| local.is_ipv6() || ip.is_ipv4();
    let usable = |ip: &IpAddr| !ip.is_unspecified() && !ip.is_loopback() && !is_link_local(ip);
    let mut chosen: Vec<IpAddr> = Vec::new();
    let candidates = preferred.iter().chain(host.iter());
    for ip in candidates.filter(|ip| family_ok(ip) && usable(ip)) {
        if !chosen.contains(ip) {
            chosen.push(*ip);
        }
    }
    if chosen.is_empty() {
        // Nothing but loopback: only this host can reach the node, and there it can.
        let loopback = if local.is_ipv6() && !host.iter().any(IpAddr::is_ipv4) {
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::from([127, 0, 0, 1])
        };
        chosen.push(loopback);
    }
    chosen
        .into_iter()
        .take(max.max(1))
        .map(|ip| SocketAddr::new(ip, local.port()))
        .collect()
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_socket_bound_to_one_address_publishes_that_address() {
        let local: SocketAddr = "10.0.0.5:4433".parse().unwrap();
        assert_eq!(choose(local, None, &ips(&["192.168.1.2"]), 8), vec![local]);
    }

    #[test]
    fn a_wildcard_socket_publishes_the_hosts_addresses_never_loopback() {
        let local: SocketAddr = "0.0.0.0:4433".parse().unwrap();
        let host = ips(&[
            "127.0.0.1",
            "192.168.1.20",
            "169.254.3.4",
            "10.8.0.2",
            "fe80::1",
        ]);
        assert_eq!(
            choose(local, None, &host, 8),
            vec![
                "192.168.1.20:4433".parse::<SocketAddr>().unwrap(),
                "10.8.0.2:4433".parse().unwrap()
            ]
        );
    }

    #[test]
    fn the_address_towards_the_supernode_comes_first_and_the_list_is_bounded() {
        let local: SocketAddr = "0.0.0.0:9".parse().unwrap();
        let host = ips(&["192.168.1.20", "10.8.0.2", "172.16.0.1"]);
        let chosen = choose(local, "10.8.0.2".parse().ok(), &host, 2);
        assert_eq!(
            chosen,
            vec![
                "10.8.0.2:9".parse::<SocketAddr>().unwrap(),
                "192.168.1.20:9".parse().unwrap()
            ]
        );
    }

    #[test]
    fn an_ipv4_wildcard_leaves_ipv6_out_and_a_dual_stack_one_keeps_both() {
        let host = ips(&["192.168.1.20", "2001:db8::7"]);
        let v4 = choose("0.0.0.0:1".parse().unwrap(), None, &host, 8);
        assert_eq!(v4, vec!["192.168.1.20:1".parse::<SocketAddr>().unwrap()]);
        let both = choose("[::]:1".parse().unwrap(), None, &host, 8);
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn the_route_towards_a_peer_names_the_interface_it_leaves_by() {
        assert_eq!(
            route_source("127.0.0.1:9".parse().unwrap()),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
    }

    #[test]
    fn a_host_with_nothing_but_loopback_publishes_loopback() {
        let local: SocketAddr = "0.0.0.0:7".parse().unwrap();
        assert_eq!(
            choose(local, None, &ips(&["127.0.0.1"]), 8),
            vec!["127.0.0.1:7".parse::<SocketAddr>().unwrap()]
        );
    }
}
