//! The cookie jar of streamtypes with `http_cookies`
//!
//! C keeps one jar per context (`LWS_WITH_CACHE_NSCOOKIEJAR`, a Netscape cookie file); here it
//! is a [`CookieJar`] in memory that the driver shares between the streams of a context and
//! hands to the http bindings in [`BindContext::cookies`](super::BindContext::cookies). The
//! rules are a subset of RFC 6265: `Domain` (which must domain-match the request host, and
//! otherwise the cookie is for that host only), `Path` (default: the request path's
//! directory), `Max-Age` (which wins) and `Expires`, `Secure` (sent over TLS only). Cookies
//! are not checked against a public suffix list, so `Domain=com` is taken as given.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Most cookies kept; storing one more drops the oldest
pub const MAX_COOKIES: usize = 256;

/// Cookies stored from `set-cookie` response headers and sent back in `cookie`
///
/// Thread safe; share it with an `Arc`. Empty when made; nothing is persisted.
#[derive(Debug, Default)]
pub struct CookieJar {
    cookies: Mutex<Vec<Cookie>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    /// Lowercase, without a leading `.`
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
    expires: Option<SystemTime>,
}

impl Cookie {
    fn matches(&self, host: &str, path: &str, tls: bool, now: SystemTime) -> bool {
        let domain_ok = if self.host_only {
            host == self.domain
        } else {
            domain_match(host, &self.domain)
        };
        domain_ok
            && path_match(path, &self.path)
            && (tls || !self.secure)
            && self.expires.is_none_or(|e| e > now)
    }
}

impl CookieJar {
    /// An empty jar
    pub fn new() -> Self {
        Self::default()
    }

    /// How many cookies the jar holds (expired ones included until the next store)
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the jar holds no cookie
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cookie
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Cookie>> {
        self.cookies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores the cookie of one `set-cookie` value received from `host` for `path`
    ///
    /// A cookie whose `Domain` does not cover `host`, or without a name, is ignored; one that
    /// has expired removes the stored cookie of the same name, domain and path.
    pub(crate) fn store(&self, host: &str, path: &str, set_cookie: &str, now: SystemTime) {
        let Some(cookie) = parse(host, path, set_cookie, now) else {
            return;
        };
        let mut jar = self.lock();
        jar.retain(|c| {
            c.expires.is_none_or(|e| e > now)
                && !(c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path)
        });
        if cookie.expires.is_some_and(|e| e <= now) {
            return;
        }
        if jar.len() >= MAX_COOKIES {
            jar.remove(0);
        }
        jar.push(cookie);
    }

    /// The `cookie` header value for a request to `host` and `path` (`tls`: over TLS), if
    /// any cookie applies: `name=value` pairs joined by `; `, longer paths first
    pub(crate) fn header(
        &self,
        host: &str,
        path: &str,
        tls: bool,
        now: SystemTime,
    ) -> Option<String> {
        let host = host.to_ascii_lowercase();
        let path = path.split('?').next().unwrap_or("/");
        let jar = self.lock();
        let mut hits: Vec<&Cookie> = jar
            .iter()
            .filter(|c| c.matches(&host, path, tls, now))
            .collect();
        if hits.is_empty() {
            return None;
        }
        hits.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = hits
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        Some(pairs.join("; "))
    }
}

fn parse(host: &str, path: &str, set_cookie: &str, now: SystemTime) -> Option<Cookie> {
    let host = host.to_ascii_lowercase();
    let mut parts = set_cookie.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return None;
    }
    let mut cookie = Cookie {
        name: name.to_owned(),
        value: value.trim_matches('"').to_owned(),
        domain: host.clone(),
        host_only: true,
        path: default_path(path),
        secure: false,
        expires: None,
    };
    let mut max_age = None;
    for attr in parts {
        let (key, val) = attr.split_once('=').unwrap_or((attr, ""));
        let (key, val) = (key.trim().to_ascii_lowercase(), val.trim());
        match key.as_str() {
            "domain" if !val.is_empty() => {
                let d = val.trim_start_matches('.').to_ascii_lowercase();
                if !domain_match(&host, &d) {
                    return None;
                }
                cookie.domain = d;
                cookie.host_only = false;
            }
            "path" if val.starts_with('/') => cookie.path = val.to_owned(),
            "secure" => cookie.secure = true,
            "max-age" => {
                max_age = val.parse::<i64>().ok().map(|s| match u64::try_from(s) {
                    Ok(s) if s > 0 => now + Duration::from_secs(s),
                    _ => SystemTime::UNIX_EPOCH,
                });
            }
            "expires" => {
                if let Ok(at) = httpdate::parse_http_date(val) {
                    cookie.expires = Some(at);
                }
            }
            _ => {}
        }
    }
    if max_age.is_some() {
        cookie.expires = max_age;
    }
    Some(cookie)
}

/// RFC 6265 5.1.3
fn domain_match(host: &str, domain: &str) -> bool {
    host == domain
        || (host.ends_with(domain)
            && host[..host.len() - domain.len()].ends_with('.')
            && host.parse::<std::net::IpAddr>().is_err())
}

/// RFC 6265 5.1.4
fn path_match(path: &str, cookie_path: &str) -> bool {
    path == cookie_path
        || (path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || path[cookie_path.len()..].starts_with('/')))
}

/// RFC 6265 5.1.4: the directory of the request path
fn default_path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("/");
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn stores_and_sends_by_host_and_path() {
        let jar = CookieJar::new();
        let now = t(1000);
        jar.store("Api.Example.com", "/v1/items?x", "sid=abc; HttpOnly", now);
        jar.store(
            "api.example.com",
            "/",
            "wide=1; Domain=.example.com; Path=/",
            now,
        );
        jar.store("api.example.com", "/", "evil=1; Domain=other.com", now);
        jar.store("api.example.com", "/", "=nameless", now);
        assert_eq!(jar.len(), 2);
        // sid: host only, default path /v1.
        let h = |host, path| jar.header(host, path, false, now);
        assert_eq!(
            h("api.example.com", "/v1/x").as_deref(),
            Some("sid=abc; wide=1")
        );
        assert_eq!(
            h("api.example.com", "/v1").as_deref(),
            Some("sid=abc; wide=1")
        );
        assert_eq!(h("api.example.com", "/v10").as_deref(), Some("wide=1"));
        assert_eq!(h("www.example.com", "/v1/x").as_deref(), Some("wide=1"));
        assert_eq!(h("example.com", "/").as_deref(), Some("wide=1"));
        assert_eq!(h("badexample.com", "/"), None);
    }

    #[test]
    fn expiry_secure_and_replacement() {
        let jar = CookieJar::new();
        jar.store(
            "h",
            "/",
            "a=1; Max-Age=10; Expires=Thu, 01 Jan 1970 00:00:01 GMT",
            t(100),
        );
        jar.store(
            "h",
            "/",
            "b=1; Expires=Thu, 01 Jan 1970 00:02:00 GMT",
            t(100),
        );
        jar.store("h", "/", "s=1; Secure", t(100));
        assert_eq!(
            jar.header("h", "/", true, t(105)).as_deref(),
            Some("a=1; b=1; s=1")
        );
        assert_eq!(
            jar.header("h", "/", false, t(105)).as_deref(),
            Some("a=1; b=1")
        );
        assert_eq!(jar.header("h", "/", false, t(115)).as_deref(), Some("b=1"));
        assert_eq!(jar.header("h", "/", false, t(125)), None);
        // Same name, domain and path: replaced; Max-Age=0 deletes.
        jar.store("h", "/", "s=2; Secure", t(100));
        assert_eq!(
            jar.header("h", "/", true, t(100)).as_deref(),
            Some("a=1; b=1; s=2")
        );
        jar.store("h", "/", "s=x; Max-Age=0", t(100));
        assert_eq!(
            jar.header("h", "/", true, t(100)).as_deref(),
            Some("a=1; b=1")
        );
        jar.clear();
        assert!(jar.is_empty());
    }

    #[test]
    fn bounded() {
        let jar = CookieJar::new();
        for i in 0..MAX_COOKIES + 5 {
            jar.store("h", "/", &format!("c{i}=v"), t(0));
        }
        assert_eq!(jar.len(), MAX_COOKIES);
        let sent = jar.header("h", "/", false, t(0)).unwrap();
        assert!(sent.starts_with("c5=v; "), "{sent}");
    }

    #[test]
    fn ip_hosts_do_not_domain_match() {
        assert!(!domain_match("1.2.3.4", "3.4"));
        assert!(domain_match("1.2.3.4", "1.2.3.4"));
        assert_eq!(default_path("/a/b/c?x=/y"), "/a/b");
        assert_eq!(default_path("/a"), "/");
        assert!(path_match("/a/b", "/a/"));
        assert!(!path_match("/ab", "/a/"));
    }
}
