//! The proxy's listening sockets: abstract (exact C encoding), filesystem (mode, group, stale
//! file), TCP; peer credentials; the link limit and the uid allow-list

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sstreams::proxy::listen::{ListenOptions, Peer, ProxyAddr, ProxyListener};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UnixStream};

const LIMIT: Duration = Duration::from_secs(10);

fn unique(tag: &str) -> String {
    format!("sstreams-test-{tag}-{}", std::process::id())
}

async fn connect_abstract(name: &str) -> UnixStream {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
    s.set_nonblocking(true).unwrap();
    UnixStream::from_std(s).unwrap()
}

#[tokio::test]
async fn abstract_socket_has_the_exact_c_name_and_peer_credentials() {
    let name = unique("abs");
    let l = ProxyListener::bind(ProxyAddr::Abstract(name.clone()), ListenOptions::default())
        .await
        .unwrap();
    // /proc/net/unix shows an abstract name as `@name`; padding NULs would show as more `@`s.
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    assert!(
        table
            .lines()
            .any(|line| line.ends_with(&format!(" @{name}"))),
        "no exact @{name}"
    );
    let _client = connect_abstract(&name).await;
    let a = tokio::time::timeout(LIMIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    assert!(
        matches!(a.peer, Peer::Unix { uid: u, gid: g, pid: Some(p) } if u == uid && g == gid && p == std::process::id() as i32),
        "{:?}",
        a.peer
    );
}

#[tokio::test]
async fn filesystem_socket_mode_group_and_stale_file() {
    let dir = std::env::temp_dir().join(unique("fs"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.sock");
    std::fs::write(&path, "stale").unwrap();
    let l = ProxyListener::bind(ProxyAddr::Path(path.clone()), ListenOptions::default())
        .await
        .unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let _c = UnixStream::connect(&path).await.unwrap();
    tokio::time::timeout(LIMIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    drop(l);

    let gid = rustix::process::getgid().as_raw();
    let mut opts = ListenOptions::default();
    opts.mode = 0o660;
    opts.group = Some(gid);
    let _l = ProxyListener::bind(ProxyAddr::Path(path.clone()), opts)
        .await
        .unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.gid(), gid);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn tcp_reports_the_chosen_port_and_peer() {
    let l = ProxyListener::bind("tcp:127.0.0.1:0".parse().unwrap(), ListenOptions::default())
        .await
        .unwrap();
    let ProxyAddr::Tcp(addr) = *l.addr() else {
        panic!("tcp")
    };
    assert_ne!(addr.port(), 0);
    let c = TcpStream::connect(addr).await.unwrap();
    let a = tokio::time::timeout(LIMIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.peer, Peer::Tcp(c.local_addr().unwrap()));
}

#[tokio::test]
async fn link_limit_and_uid_allow_list_close_extra_links() {
    let name = unique("limit");
    let mut opts = ListenOptions::default();
    opts.max_links = 1;
    let l = ProxyListener::bind(ProxyAddr::Abstract(name.clone()), opts)
        .await
        .unwrap();
    let _first = connect_abstract(&name).await;
    let held = tokio::time::timeout(LIMIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut second = connect_abstract(&name).await;
    let accept_more = tokio::spawn(async move {
        let _next = l.accept().await;
    });
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(LIMIT, second.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the link over the limit is closed");
    drop(held);
    accept_more.abort();

    let name = unique("uids");
    let mut opts = ListenOptions::default();
    opts.allowed_uids = Some(vec![rustix::process::getuid().as_raw() + 1]);
    let l = ProxyListener::bind(ProxyAddr::Abstract(name.clone()), opts)
        .await
        .unwrap();
    let mut c = connect_abstract(&name).await;
    let accepting = tokio::spawn(async move {
        let _next = l.accept().await;
    });
    let n = tokio::time::timeout(LIMIT, c.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "a uid not on the allow-list is closed");
    accepting.abort();
}
