//! Opening the byte stream under a client connection: DNS, TCP or Unix socket, then TLS
//!
//! [`connect`] takes a resolved [`Endpoint`] and gives a [`Transport`], one type whatever the
//! socket kind, so the protocol bindings need not care. Host names resolve with the runtime's
//! resolver (IPv4 and IPv6); each address is tried in the resolver's order until one accepts.
//! [`connect_measured`] does the same and records the timings of each step in a [`ConnPerf`]
//! (streamtypes with `"perf": true`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use rustls::ClientConfig;
use sstreams_core::policy::{Endpoint, Target};
use sstreams_core::stream::perf::{ConnPerf, DnsDisposition, Peer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use crate::tls::{HandshakeFailure, server_name};

/// Why a connection could not be opened
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name did not resolve
    #[error("cannot resolve `{host}`: {source}")]
    Dns {
        /// The host name
        host: String,
        /// The resolver's error
        source: io::Error,
    },
    /// No address accepted the connection
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// Where
        target: String,
        /// The last socket error
        source: io::Error,
    },
    /// The TLS handshake failed
    #[error("TLS with {target}: {failure}")]
    Tls {
        /// Where
        target: String,
        /// Why
        failure: HandshakeFailure,
    },
    /// TLS is required but no configuration was given, or the name is not a TLS name
    #[error("TLS with {target}: {reason}")]
    TlsSetup {
        /// Where
        target: String,
        /// Why
        reason: String,
    },
}

/// A connected byte stream: TCP or Unix socket, with or without TLS
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP
    Tcp(TcpStream),
    /// Plain Unix domain socket
    Unix(UnixStream),
    /// TLS over TCP or a Unix socket
    Tls(Box<TlsStream<Plain>>),
}

/// The socket under a TLS session
#[derive(Debug)]
pub enum Plain {
    /// TCP
    Tcp(TcpStream),
    /// Unix domain socket
    Unix(UnixStream),
}

impl Transport {
    /// The ALPN protocol the server selected, if TLS negotiated one
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Tls(t) => t.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }
}

/// Connects to `endpoint`; `tls` is required when `endpoint.tls` is set
///
/// The TLS server name (SNI and certificate check) is the endpoint host; for Unix sockets it
/// is `localhost`.
pub async fn connect(
    endpoint: &Endpoint,
    tls: Option<Arc<ClientConfig>>,
) -> Result<Transport, ConnectError> {
    open(endpoint, tls, None).await
}

/// As [`connect`], recording into `perf` (cleared first) what each step took, the addresses
/// the lookup gave and the peer, whether or not the connection is made
///
/// `perf` is left with the peer tried last when no connect succeeded, and with a zero
/// [`tls_time`](ConnPerf::tls_time) when the handshake failed.
pub async fn connect_measured(
    endpoint: &Endpoint,
    tls: Option<Arc<ClientConfig>>,
    perf: &mut ConnPerf,
) -> Result<Transport, ConnectError> {
    *perf = ConnPerf::default();
    open(endpoint, tls, Some(perf)).await
}

async fn open(
    endpoint: &Endpoint,
    tls: Option<Arc<ClientConfig>>,
    mut perf: Option<&mut ConnPerf>,
) -> Result<Transport, ConnectError> {
    let target = endpoint.target.to_string();
    let setup = |reason: String| ConnectError::TlsSetup {
        target: target.clone(),
        reason,
    };
    // Check the TLS side before touching the network.
    let tls = match (endpoint.tls, tls) {
        (false, _) => None,
        (true, None) => return Err(setup("no TLS configuration".into())),
        (true, Some(config)) => {
            let host = match &endpoint.target {
                Target::Host { host, .. } => host.as_str(),
                Target::Unix(_) | Target::UnixAbstract(_) => "localhost",
            };
            Some((config, server_name(host).map_err(|e| setup(e.to_string()))?))
        }
    };
    let unix_failed = |source| ConnectError::Connect {
        target: target.clone(),
        source,
    };
    let plain = match &endpoint.target {
        Target::Host { host, port } => {
            Plain::Tcp(tcp(host, *port, &target, perf.as_deref_mut()).await?)
        }
        Target::Unix(path) => {
            let start = Instant::now();
            let s = UnixStream::connect(path).await.map_err(unix_failed)?;
            record_unix(perf.as_deref_mut(), start);
            Plain::Unix(s)
        }
        Target::UnixAbstract(name) => {
            let start = Instant::now();
            let s = abstract_unix(name).map_err(unix_failed)?;
            record_unix(perf.as_deref_mut(), start);
            Plain::Unix(s)
        }
    };
    let Some((config, name)) = tls else {
        return Ok(match plain {
            Plain::Tcp(s) => Transport::Tcp(s),
            Plain::Unix(s) => Transport::Unix(s),
        });
    };
    let start = Instant::now();
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, plain)
        .await
        .map_err(|e| ConnectError::Tls {
            target: target.clone(),
            failure: HandshakeFailure::of(&e),
        })?;
    if let Some(p) = perf {
        p.tls_time = start.elapsed();
    }
    Ok(Transport::Tls(Box::new(stream)))
}

/// A Unix socket connect that succeeded (C reports the peer of a failed one as unset too)
fn record_unix(perf: Option<&mut ConnPerf>, start: Instant) {
    if let Some(p) = perf {
        p.sockconn_time = start.elapsed();
        p.peer = Peer::Unix;
    }
}

async fn tcp(
    host: &str,
    port: u16,
    target: &str,
    mut perf: Option<&mut ConnPerf>,
) -> Result<TcpStream, ConnectError> {
    let start = Instant::now();
    let looked_up = tokio::net::lookup_host((host, port)).await;
    if let Some(p) = perf.as_deref_mut() {
        p.dns_time = start.elapsed();
        p.dns_disposition = DnsDisposition::NoResult;
    }
    let addrs: Vec<_> = looked_up
        .map_err(|source| ConnectError::Dns {
            host: host.to_owned(),
            source,
        })?
        .collect();
    if let Some(p) = perf.as_deref_mut() {
        p.add_dns_results(addrs.iter().map(|a| a.ip()));
        if !addrs.is_empty() {
            p.dns_disposition = DnsDisposition::Ok;
        }
    }
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
    for addr in addrs {
        let start = Instant::now();
        if let Some(p) = perf.as_deref_mut() {
            p.peer = Peer::Ip(addr.ip());
        }
        match TcpStream::connect(addr).await {
            Ok(s) => {
                if let Some(p) = perf {
                    p.sockconn_time = start.elapsed();
                }
                // Small writes (headers, frames) go out at once.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => {
                tracing::debug!("connect {addr}: {e}");
                last = e;
            }
        }
    }
    Err(ConnectError::Connect {
        target: target.to_owned(),
        source: last,
    })
}

#[cfg(target_os = "linux")]
fn abstract_unix(name: &str) -> io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    // Connecting to a local socket does not block for long; there is no async form.
    let s = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    s.set_nonblocking(true)?;
    UnixStream::from_std(s)
}

#[cfg(not(target_os = "linux"))]
fn abstract_unix(_name: &str) -> io::Result<UnixStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract Unix sockets are Linux only",
    ))
}

macro_rules! delegate_io {
    ($ty:ident { $($variant:ident),* }) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_read(cx, buf),)*
                }
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_write(cx, buf),)*
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_write_vectored(cx, bufs),)*
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $(Self::$variant(s) => s.is_write_vectored(),)*
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_flush(cx),)*
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_shutdown(cx),)*
                }
            }
        }
    };
}

delegate_io!(Plain { Tcp, Unix });
delegate_io!(Transport { Tcp, Unix, Tls });
