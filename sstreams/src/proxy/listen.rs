//! Where the SS proxy listens, and who may connect
//!
//! The proxy listens on a Linux abstract Unix socket (default `proxy.ss.lws`, encoded exactly
//! as the C proxy and client do: a leading NUL and the 12 name bytes, no padding), a
//! filesystem Unix socket, or TCP. Each accepted link carries one secure stream.
//!
//! Access control beyond reachability (the C proxy has none): a filesystem socket is created
//! with mode [`ListenOptions::mode`] (default `0o600`) and optionally a group; every Unix peer's
//! credentials (uid, gid, pid from `SO_PEERCRED`) are logged and may be checked against an
//! allow-list of uids; at most [`ListenOptions::max_links`] links are open at once, further
//! ones are closed at once (a C client retries its link every second).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The C default proxy socket name (abstract namespace on Linux)
pub const DEFAULT_NAME: &str = "proxy.ss.lws";

/// A proxy listening address
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyAddr {
    /// Linux abstract Unix socket `@name`
    Abstract(String),
    /// Filesystem Unix socket
    Path(PathBuf),
    /// TCP
    Tcp(SocketAddr),
}

impl Default for ProxyAddr {
    /// The C default: abstract `proxy.ss.lws` on Linux, `/tmp/proxy.ss.lws` elsewhere
    fn default() -> Self {
        if cfg!(target_os = "linux") {
            Self::Abstract(DEFAULT_NAME.to_owned())
        } else {
            Self::Path(PathBuf::from("/tmp").join(DEFAULT_NAME))
        }
    }
}

/// A listening address that does not parse
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a proxy address (expected @name, /path or tcp:ADDR:PORT)")]
pub struct BadProxyAddr(String);

impl FromStr for ProxyAddr {
    type Err = BadProxyAddr;

    /// `@name` (abstract), `/path` or `./path` (filesystem), `tcp:ADDR:PORT`
    fn from_str(s: &str) -> Result<Self, BadProxyAddr> {
        let bad = || BadProxyAddr(s.to_owned());
        if let Some(name) = s.strip_prefix('@') {
            return (!name.is_empty())
                .then(|| Self::Abstract(name.to_owned()))
                .ok_or_else(bad);
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            return addr.parse().map(Self::Tcp).map_err(|_| bad());
        }
        if s.starts_with('/') || s.starts_with("./") {
            return Ok(Self::Path(PathBuf::from(s)));
        }
        Err(bad())
    }
}

impl ProxyAddr {
    /// The address as a client connects to it
    pub fn endpoint(&self) -> sstreams_core::policy::Endpoint {
        use sstreams_core::policy::{Endpoint, Target};
        let target = match self {
            Self::Abstract(n) => Target::UnixAbstract(n.clone()),
            Self::Path(p) => Target::Unix(p.to_string_lossy().into_owned()),
            Self::Tcp(a) => Target::Host {
                host: a.ip().to_string(),
                port: a.port(),
            },
        };
        Endpoint {
            target,
            tls: false,
            path: None,
        }
    }
}

impl fmt::Display for ProxyAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Abstract(n) => write!(f, "@{n}"),
            Self::Path(p) => write!(f, "{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Listening options
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ListenOptions {
    /// Permission bits of a filesystem socket. Default `0o600` (owner only).
    pub mode: u32,
    /// Group of a filesystem socket (with `mode` `0o660`, the group may connect). Default: the
    /// process's group.
    pub group: Option<u32>,
    /// Most links open at once. Default 1024.
    pub max_links: usize,
    /// If set, only Unix peers with one of these uids are served. Default: anyone who can
    /// reach the socket.
    pub allowed_uids: Option<Vec<u32>>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            mode: 0o600,
            group: None,
            max_links: 1024,
            allowed_uids: None,
        }
    }
}

/// Who is at the other end of a link
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A Unix socket peer, with its kernel-reported credentials
    Unix {
        /// User id
        uid: u32,
        /// Group id
        gid: u32,
        /// Process id, if known
        pid: Option<i32>,
    },
    /// A TCP peer
    Tcp(SocketAddr),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix {
                uid,
                gid,
                pid: Some(pid),
            } => write!(f, "uid {uid} gid {gid} pid {pid}"),
            Self::Unix {
                uid,
                gid,
                pid: None,
            } => write!(f, "uid {uid} gid {gid}"),
            Self::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// An accepted link's socket
#[derive(Debug)]
pub enum LinkSocket {
    /// Unix domain socket
    Unix(UnixStream),
    /// TCP
    Tcp(TcpStream),
}

/// An accepted link: its socket, its peer, and its place under the link limit (released
/// when dropped)
#[derive(Debug)]
pub struct Accepted {
    /// The socket
    pub socket: LinkSocket,
    /// The peer
    pub peer: Peer,
    _permit: OwnedSemaphorePermit,
}

/// The proxy's listening socket
#[derive(Debug)]
pub struct ProxyListener {
    inner: Inner,
    addr: ProxyAddr,
    options: ListenOptions,
    links: Arc<Semaphore>,
}

#[derive(Debug)]
enum Inner {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl ProxyListener {
    /// Listens on `addr` (a stale filesystem socket is removed first, as C does)
    pub async fn bind(addr: ProxyAddr, options: ListenOptions) -> io::Result<Self> {
        let inner = match &addr {
            ProxyAddr::Abstract(name) => Inner::Unix(bind_abstract(name)?),
            ProxyAddr::Path(path) => {
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                let l = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(options.mode))?;
                if let Some(gid) = options.group {
                    std::os::unix::fs::chown(path, None, Some(gid))?;
                }
                Inner::Unix(l)
            }
            ProxyAddr::Tcp(sa) => Inner::Tcp(TcpListener::bind(sa).await?),
        };
        let links = Arc::new(Semaphore::new(options.max_links));
        let addr = match (&addr, &inner) {
            // Report the port the OS chose.
            (ProxyAddr::Tcp(_), Inner::Tcp(l)) => ProxyAddr::Tcp(l.local_addr()?),
            _ => addr,
        };
        tracing::info!("SS proxy listening on {addr}");
        Ok(Self {
            inner,
            addr,
            options,
            links,
        })
    }

    /// Where it listens (for TCP port 0, the port chosen)
    pub fn addr(&self) -> &ProxyAddr {
        &self.addr
    }

    /// The next link that is allowed in; links over the limit or from a uid not on the
    /// allow-list are closed at once (and logged)
    pub async fn accept(&self) -> io::Result<Accepted> {
        loop {
            let (socket, peer) = match &self.inner {
                Inner::Unix(l) => {
                    let (s, _) = l.accept().await?;
                    let cred = s.peer_cred()?;
                    let peer = Peer::Unix {
                        uid: cred.uid(),
                        gid: cred.gid(),
                        pid: cred.pid(),
                    };
                    (LinkSocket::Unix(s), peer)
                }
                Inner::Tcp(l) => {
                    let (s, a) = l.accept().await?;
                    let _ = s.set_nodelay(true);
                    (LinkSocket::Tcp(s), Peer::Tcp(a))
                }
            };
            if let (Peer::Unix { uid, .. }, Some(allowed)) = (peer, &self.options.allowed_uids) {
                if !allowed.contains(&uid) {
                    tracing::warn!("SS proxy: refused link from {peer}: uid not allowed");
                    continue;
                }
            }
            let Ok(permit) = Arc::clone(&self.links).try_acquire_owned() else {
                tracing::warn!(
                    "SS proxy: refused link from {peer}: {} links open already",
                    self.options.max_links
                );
                continue;
            };
            tracing::info!("SS proxy: link from {peer}");
            return Ok(Accepted {
                socket,
                peer,
                _permit: permit,
            });
        }
    }
}

#[cfg(target_os = "linux")]
fn bind_abstract(name: &str) -> io::Result<UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let l = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    l.set_nonblocking(true)?;
    UnixListener::from_std(l)
}

#[cfg(not(target_os = "linux"))]
fn bind_abstract(_name: &str) -> io::Result<UnixListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract Unix sockets are Linux only",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            "@proxy.ss.lws".parse(),
            Ok(ProxyAddr::Abstract("proxy.ss.lws".into()))
        );
        assert_eq!(
            "/run/ss.sock".parse(),
            Ok(ProxyAddr::Path("/run/ss.sock".into()))
        );
        assert_eq!(
            "tcp:127.0.0.1:1234".parse(),
            Ok(ProxyAddr::Tcp("127.0.0.1:1234".parse().unwrap()))
        );
        assert_eq!(
            "tcp:[::1]:7".parse::<ProxyAddr>().unwrap().to_string(),
            "tcp:[::1]:7"
        );
        for bad in ["", "@", "tcp:nope", "proxy.ss.lws", "+@x"] {
            assert!(bad.parse::<ProxyAddr>().is_err(), "{bad}");
        }
        assert_eq!(ProxyAddr::default().to_string(), "@proxy.ss.lws");
    }
}
