//! Connection performance (`"perf": true`): what one connection cost, as the C JSON
//!
//! A streamtype with policy `perf` gets, once per connection, an extra rx carrying
//! [`PayloadFlags::PERF_JSON`](super::PayloadFlags::PERF_JSON) (with SOM and EOM) whose
//! payload is [`ConnPerf::to_json`]. The runtime fills a [`ConnPerf`] while it connects; this
//! file only holds the record and its formatting, so the JSON is the same on every path
//! (direct stream, proxy PERF frame).
//!
//! The shape is that of libwebsockets' conmon (`lws_conmon_ss_json`), keys in this order, no
//! whitespace, times in whole microseconds:
//!
//! ```text
//! {"peer":"127.0.0.1","dns_us":12,"dns_disp":1,"sockconn_us":95,"tls_us":0,
//!  "txn_resp_us":310,"dns":["127.0.0.1"],"prot_specific":{"protocol":"http","resp":200}}
//! ```
//!
//! `prot_specific` is present only when [`ConnPerf::http_response`] is set. Unlike C, which
//! writes into a 500-byte buffer, a long `dns` list is never cut short.

use std::fmt::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

/// The performance record of one connection (C `struct lws_conmon`)
///
/// Every time is zero when the step did not happen (no DNS for an IP literal is still a
/// lookup; a Unix socket has none; no TLS; no transaction). Start from
/// [`ConnPerf::default`] and set the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnPerf {
    /// The address connected to, or the last one tried when no connect succeeded
    pub peer: Peer,
    /// Time to resolve the host name (`dns_us`); default zero
    pub dns_time: Duration,
    /// How the lookup went (`dns_disp`); default [`DnsDisposition::None`]
    pub dns_disposition: DnsDisposition,
    /// Time of the socket connect that succeeded, from its start (`sockconn_us`); zero if none
    /// did
    pub sockconn_time: Duration,
    /// Time of the TLS handshake (`tls_us`); zero without TLS, and when it failed
    pub tls_time: Duration,
    /// Time from sending the request to the response head (`txn_resp_us`); zero for protocols
    /// without transactions
    pub txn_resp_time: Duration,
    /// Every distinct address the lookup gave, in the resolver's order (`dns`); default empty
    pub dns_results: Vec<IpAddr>,
    /// The http status of the connection's transaction, 0 when the connection ended before
    /// a response (`prot_specific.resp`); `None` leaves `prot_specific` out (not http, or the
    /// connection was never made)
    pub http_response: Option<u16>,
}

/// The peer of a connection, as C writes it in `peer`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// No address was tried (the lookup failed): `(unset)`
    #[default]
    Unset,
    /// An IP address, without the port: `127.0.0.1`, `::1`
    Ip(IpAddr),
    /// A Unix domain socket: `(unix skt)`
    Unix,
}

/// How the host name lookup went (C `lws_conmon_dns_disposition_t`, written as its number)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsDisposition {
    /// No lookup was made (Unix socket): 0
    #[default]
    None = 0,
    /// The lookup gave addresses: 1
    Ok = 1,
    /// The DNS server could not be reached: 2 (C never reports it, see below)
    ServerUnreachable = 2,
    /// The lookup failed or gave nothing usable: 3
    ///
    /// C sets 2 for some resolver errors and then overwrites it with 3 for every failure, so
    /// 3 is what a C client sees for any failed lookup; the runtime does the same.
    NoResult = 3,
}

impl ConnPerf {
    /// Appends the addresses of `results` not already in [`dns_results`](Self::dns_results)
    pub fn add_dns_results(&mut self, results: impl IntoIterator<Item = IpAddr>) {
        for ip in results {
            if !self.dns_results.contains(&ip) {
                self.dns_results.push(ip);
            }
        }
    }

    /// The JSON document C delivers with `PERF_JSON` (see the module docs for the shape)
    ///
    /// Times are whole microseconds, saturating at `u32::MAX` (C keeps 32 bits, about 71
    /// minutes).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(160 + 42 * self.dns_results.len());
        // Writing to a String cannot fail.
        let _ = self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) -> fmt::Result {
        write!(
            out,
            "{{\"peer\":\"{}\",\"dns_us\":{},\"dns_disp\":{},\"sockconn_us\":{},\"tls_us\":{},\
             \"txn_resp_us\":{},\"dns\":[",
            self.peer,
            micros(self.dns_time),
            self.dns_disposition as u8,
            micros(self.sockconn_time),
            micros(self.tls_time),
            micros(self.txn_resp_time),
        )?;
        for (i, ip) in self.dns_results.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(out, "{sep}\"{ip}\"")?;
        }
        out.push(']');
        if let Some(status) = self.http_response {
            write!(
                out,
                ",\"prot_specific\":{{\"protocol\":\"http\",\"resp\":{status}}}"
            )?;
        }
        out.push('}');
        Ok(())
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unset => f.write_str("(unset)"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Unix => f.write_str("(unix skt)"),
        }
    }
}

/// Whole microseconds in C's 32 bits, saturating
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn http_connection_has_every_key_in_c_order() {
        let mut p = ConnPerf {
            peer: Peer::Ip(IpAddr::V4(Ipv4Addr::new(46, 105, 127, 147))),
            dns_time: Duration::from_micros(1234),
            dns_disposition: DnsDisposition::Ok,
            sockconn_time: Duration::from_nanos(2_345_999), // sub-µs part dropped
            tls_time: Duration::from_micros(3456),
            txn_resp_time: Duration::from_micros(4567),
            http_response: Some(200),
            ..ConnPerf::default()
        };
        p.add_dns_results([
            IpAddr::V4(Ipv4Addr::new(46, 105, 127, 147)),
            IpAddr::V6("2001:41d0:2:ee93::1".parse().unwrap()),
            IpAddr::V4(Ipv4Addr::new(46, 105, 127, 147)), // duplicate, dropped
        ]);
        assert_eq!(
            p.to_json(),
            concat!(
                r#"{"peer":"46.105.127.147","dns_us":1234,"dns_disp":1,"sockconn_us":2345,"#,
                r#""tls_us":3456,"txn_resp_us":4567,"dns":["46.105.127.147","2001:41d0:2:ee93::1"],"#,
                r#""prot_specific":{"protocol":"http","resp":200}}"#
            )
        );
    }

    #[test]
    fn failed_lookup_is_unset_with_no_results_and_no_prot_specific() {
        let p = ConnPerf {
            dns_time: Duration::from_micros(7),
            dns_disposition: DnsDisposition::NoResult,
            ..ConnPerf::default()
        };
        assert_eq!(
            p.to_json(),
            r#"{"peer":"(unset)","dns_us":7,"dns_disp":3,"sockconn_us":0,"tls_us":0,"txn_resp_us":0,"dns":[]}"#
        );
    }

    #[test]
    fn unix_and_ipv6_peers_are_written_as_c_writes_them() {
        assert_eq!(Peer::Unix.to_string(), "(unix skt)");
        assert_eq!(Peer::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)).to_string(), "::1");
        let p = ConnPerf {
            peer: Peer::Unix,
            http_response: Some(0),
            ..ConnPerf::default()
        };
        assert!(
            p.to_json()
                .starts_with(r#"{"peer":"(unix skt)","dns_us":0,"dns_disp":0,"#)
        );
        assert!(
            p.to_json()
                .ends_with(r#""dns":[],"prot_specific":{"protocol":"http","resp":0}}"#)
        );
    }

    #[test]
    fn times_saturate_at_32_bits_of_microseconds() {
        let p = ConnPerf {
            txn_resp_time: Duration::from_secs(5000), // over C's ~71 minutes
            ..ConnPerf::default()
        };
        assert!(p.to_json().contains(r#""txn_resp_us":4294967295,"#));
    }
}
