//! Where a client stream connects: the `endpoint` after `${}` expansion
//!
//! The rules are the C library's (`_lws_ss_client_connect`):
//!
//! * `+@name` is a Linux abstract Unix socket, `+/path` (any `+…`) a filesystem Unix socket;
//! * otherwise, an endpoint containing `:` that parses as a URL (`scheme://host:port/path`,
//!   or `host:port`) overrides the policy's port and `http_url` with the URL's; the schemes
//!   `http`, `ws` and `mqtt` turn TLS off, any other scheme keeps the policy's `tls`;
//! * otherwise the endpoint is a host name or IP address, with the policy's port.
//!
//! A URL without a port uses the scheme's well-known port (80 for http/ws, 443 for https/wss,
//! 1883 for mqtt, 8883 for mqtts), or the policy's port for other schemes.

use std::fmt;

use super::StreamType;

/// Where to connect
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A DNS name or IP address (IPv6 without brackets) and a port
    Host {
        /// Host name or IP address
        host: String,
        /// TCP port
        port: u16,
    },
    /// A filesystem Unix domain socket
    Unix(String),
    /// A Linux abstract Unix domain socket (the name without the leading NUL or `@`)
    UnixAbstract(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Host { host, port } => write!(f, "{host}:{port}"),
            Self::Unix(p) => write!(f, "unix:{p}"),
            Self::UnixAbstract(n) => write!(f, "unix:@{n}"),
        }
    }
}

/// A client stream's resolved endpoint
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Where to connect
    pub target: Target,
    /// Whether to use TLS
    pub tls: bool,
    /// A URL path from the endpoint, which replaces `http_url` (without the leading `/`)
    pub path: Option<String>,
}

/// An endpoint that cannot be connected to
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The streamtype has no endpoint, or it expanded to nothing
    #[error("streamtype `{0}` has no endpoint (or its metadata expanded to nothing)")]
    Missing(String),
    /// A URL endpoint that does not parse
    #[error("endpoint {0:?} is not a valid host, host:port or URL")]
    Malformed(String),
}

impl StreamType {
    /// Expands `endpoint` with `lookup` (metadata value by name; unset expands to nothing) and
    /// applies the Unix socket and URL rules
    pub fn resolve_endpoint<'a, F>(&self, lookup: F) -> Result<Endpoint, EndpointError>
    where
        F: FnMut(&str) -> Option<&'a [u8]>,
    {
        let missing = || EndpointError::Missing(self.name().to_owned());
        let expanded = self.endpoint().ok_or_else(missing)?.expand(lookup);
        let ep = expanded.trim();
        if ep.is_empty() {
            return Err(missing());
        }
        let tls = self.tls();
        if let Some(name) = ep.strip_prefix("+@") {
            return Ok(Endpoint {
                target: Target::UnixAbstract(name.to_owned()),
                tls,
                path: None,
            });
        }
        if let Some(path) = ep.strip_prefix('+') {
            return Ok(Endpoint {
                target: Target::Unix(path.to_owned()),
                tls,
                path: None,
            });
        }
        if !ep.contains(':') {
            let target = Target::Host {
                host: ep.to_owned(),
                port: self.port(),
            };
            return Ok(Endpoint {
                target,
                tls,
                path: None,
            });
        }
        parse_url(ep, self.port(), tls)
    }
}

fn parse_url(ep: &str, policy_port: u16, policy_tls: bool) -> Result<Endpoint, EndpointError> {
    let bad = || EndpointError::Malformed(ep.to_owned());
    let (scheme, rest) = match ep.split_once("://") {
        Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
        None => (None, ep),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (
            &rest[..i],
            Some(rest[i..].trim_start_matches('/').to_owned()),
        ),
        None => (rest, None),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else if scheme.is_none() && authority.matches(':').count() > 1 {
        // A bare IPv6 address: no port in it.
        (authority, None)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(bad());
    }
    let default_port = match scheme.as_deref() {
        Some("http" | "ws") => 80,
        Some("https" | "wss") => 443,
        Some("mqtt") => 1883,
        Some("mqtts") => 8883,
        _ => policy_port,
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => default_port,
    };
    let tls = match scheme.as_deref() {
        Some("http" | "ws" | "mqtt") => false,
        _ => policy_tls,
    };
    Ok(Endpoint {
        target: Target::Host {
            host: host.to_owned(),
            port,
        },
        tls,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::policy::spec::{MetadataSpec, PolicySpec, StreamTypeSpec};

    fn resolve(
        endpoint: &str,
        port: u16,
        tls: bool,
        value: &str,
    ) -> Result<Endpoint, EndpointError> {
        let p = Policy::from_spec(PolicySpec {
            streamtypes: vec![StreamTypeSpec {
                endpoint: Some(endpoint.into()),
                port,
                tls,
                metadata: vec![MetadataSpec {
                    name: "m".into(),
                    header: String::new(),
                }],
                ..StreamTypeSpec::named("st")
            }],
            ..Default::default()
        })
        .unwrap();
        p.streamtype("st")
            .unwrap()
            .resolve_endpoint(|_| Some(value.as_bytes()))
    }

    fn host(h: &str, port: u16) -> Target {
        Target::Host {
            host: h.into(),
            port,
        }
    }

    #[test]
    fn plain_hosts_use_the_policy() {
        let e = resolve("${m}.example.com", 8443, true, "uk").unwrap();
        assert_eq!(
            e,
            Endpoint {
                target: host("uk.example.com", 8443),
                tls: true,
                path: None
            }
        );
        let e = resolve("127.0.0.1", 80, false, "").unwrap();
        assert_eq!(e.target, host("127.0.0.1", 80));
    }

    #[test]
    fn unix_sockets() {
        let e = resolve("+/run/x.sock", 0, false, "").unwrap();
        assert_eq!(e.target, Target::Unix("/run/x.sock".into()));
        let e = resolve("+@proxy.ss.lws", 0, false, "").unwrap();
        assert_eq!(e.target, Target::UnixAbstract("proxy.ss.lws".into()));
        assert_eq!(e.target.to_string(), "unix:@proxy.ss.lws");
    }

    #[test]
    fn urls_override_port_path_and_tls() {
        let e = resolve("${m}", 443, true, "http://localhost:8080/a/b?c=1").unwrap();
        assert_eq!(
            e,
            Endpoint {
                target: host("localhost", 8080),
                tls: false,
                path: Some("a/b?c=1".into())
            }
        );
        let e = resolve("${m}", 1, true, "https://example.com").unwrap();
        assert_eq!(
            e,
            Endpoint {
                target: host("example.com", 443),
                tls: true,
                path: None
            }
        );
        let e = resolve("${m}", 1, false, "https://example.com/").unwrap();
        assert_eq!(
            (e.tls, e.path.as_deref()),
            (false, Some("")),
            "https keeps the policy tls"
        );
        let e = resolve("${m}", 1, true, "ws://h/x").unwrap();
        assert_eq!((e.target, e.tls), (host("h", 80), false));
        let e = resolve("${m}", 1, true, "mqtt://broker").unwrap();
        assert_eq!((e.target, e.tls), (host("broker", 1883), false));
        let e = resolve("${m}", 7, true, "example.com:9000").unwrap();
        assert_eq!((e.target, e.tls), (host("example.com", 9000), true));
    }

    #[test]
    fn ipv6() {
        let e = resolve("${m}", 5, false, "[::1]:7681").unwrap();
        assert_eq!(e.target, host("::1", 7681));
        assert_eq!(e.target.to_string(), "[::1]:7681");
        let e = resolve("${m}", 5, false, "::1").unwrap();
        assert_eq!(e.target, host("::1", 5));
        let e = resolve("${m}", 5, false, "http://[fe80::1]/p").unwrap();
        assert_eq!(e.target, host("fe80::1", 80));
    }

    #[test]
    fn bad_endpoints() {
        assert!(matches!(
            resolve("${m}", 1, false, ""),
            Err(EndpointError::Missing(_))
        ));
        assert!(matches!(
            resolve("${m}", 1, false, "h:99999"),
            Err(EndpointError::Malformed(_))
        ));
        assert!(matches!(
            resolve("${m}", 1, false, "http://:80/"),
            Err(EndpointError::Malformed(_))
        ));
        assert!(matches!(
            resolve("${m}", 1, false, "[::1"),
            Err(EndpointError::Malformed(_))
        ));
    }
}
