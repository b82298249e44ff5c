//! The known keys of each policy object, and "did you mean" for the unknown ones

/// Top-level keys
pub(super) const TOP: &[&str] = &[
    "release",
    "product",
    "schema-version",
    "via-socks5",
    "retry",
    "certs",
    "trust_stores",
    "metrics",
    "auth",
    "s",
];

/// Keys of a `retry` scheme
pub(super) const RETRY: &[&str] = &["backoff", "conceal", "jitterpc", "svalidping", "svalidhup"];

/// Keys of a long-form trust store
pub(super) const TRUST_STORE: &[&str] = &["name", "stack"];

/// Keys of a `metrics` entry
pub(super) const METRICS: &[&str] = &[
    "name",
    "us_schedule",
    "us_halflife",
    "min_outlier",
    "report",
];

/// Keys of an `auth` entry
pub(super) const AUTH: &[&str] = &["name", "type", "streamtype", "blob"];

/// Keys of a streamtype: the C parser's 78 plus `auth_hexify`
pub(super) const STREAMTYPE: &[&str] = &[
    "endpoint",
    "via-socks5",
    "protocol",
    "port",
    "plugins",
    "tls",
    "client_cert",
    "opportunistic",
    "nailed_up",
    "allow_redirects",
    "urgent_tx",
    "urgent_rx",
    "attr_priority",
    "attr_low_latency",
    "attr_high_throughput",
    "attr_high_reliability",
    "attr_low_cost",
    "long_poll",
    "ws_prioritize_reads",
    "retry",
    "timeout_ms",
    "perf",
    "tls_trust_store",
    "proxy_buflen",
    "proxy_buflen_rxflow_on_above",
    "proxy_buflen_rxflow_off_below",
    "client_buflen",
    "client_buflen_rxflow_on_above",
    "client_buflen_rxflow_off_below",
    "metadata",
    "http_resp_map",
    "http_auth_header",
    "http_dsn_header",
    "http_fwv_header",
    "http_devtype_header",
    "http_auth_preamble",
    "auth_hexify",
    "http_no_content_length",
    "rideshare",
    "payload_fmt",
    "http_method",
    "http_url",
    "nghttp2_quirk_end_stream",
    "h2q_oflow_txcr",
    "http_multipart_name",
    "http_multipart_filename",
    "http_mime_content_type",
    "http_www_form_urlencoded",
    "http_expect",
    "http_cookies",
    "http_fail_redirect",
    "http_multipart_ss_in",
    "ws_subprotocol",
    "ws_binary",
    "local_sink",
    "options",
    "server",
    "server_cert",
    "server_key",
    "mqtt_topic",
    "mqtt_subscribe",
    "mqtt_qos",
    "mqtt_retain",
    "mqtt_keep_alive",
    "mqtt_clean_start",
    "mqtt_will_topic",
    "mqtt_will_message",
    "mqtt_will_qos",
    "mqtt_will_retain",
    "mqtt_birth_topic",
    "mqtt_birth_message",
    "mqtt_birth_qos",
    "mqtt_birth_retain",
    "aws_iot",
    "swake_validity",
    "use_auth",
    "aws_region",
    "aws_service",
    "direct_proto_str",
];

/// Names the SS README uses that the parser spells differently
const ALIASES: &[(&str, &str)] = &[
    ("client cert", "client_cert"),
    ("mqtt qos", "mqtt_qos"),
    ("http_multipart_content_type", "http_mime_content_type"),
    ("schema_version", "schema-version"),
    ("via_socks5", "via-socks5"),
];

/// The known key that `key` was probably meant to be
pub(super) fn suggest(key: &str, known: &'static [&'static str]) -> Option<&'static str> {
    if let Some(&(_, to)) = ALIASES.iter().find(|(from, _)| *from == key) {
        if let Some(k) = known.iter().find(|k| **k == to) {
            return Some(k);
        }
    }
    let normal = normalise(key);
    if let Some(k) = known.iter().find(|k| normalise(k) == normal) {
        return Some(k);
    }
    if normal.len() >= 4 {
        if let Some(k) = known.iter().find(|k| k.starts_with(&format!("{normal}_"))) {
            return Some(k);
        }
    }
    let limit = (key.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(&normal, &normalise(k)), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn normalise(key: &str) -> String {
    key.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Levenshtein distance over chars
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("mqtt qos", STREAMTYPE), Some("mqtt_qos"));
        assert_eq!(suggest("client cert", STREAMTYPE), Some("client_cert"));
        assert_eq!(
            suggest("http_multipart_content_type", STREAMTYPE),
            Some("http_mime_content_type")
        );
        assert_eq!(suggest("nailedup", STREAMTYPE), Some("nailed_up"));
        assert_eq!(suggest("Endpoint", STREAMTYPE), Some("endpoint"));
        assert_eq!(suggest("timeout", STREAMTYPE), Some("timeout_ms"));
        assert_eq!(suggest("schema_version", TOP), Some("schema-version"));
        assert_eq!(suggest("completely_different_thing", STREAMTYPE), None);
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn streamtype_keys_are_unique() {
        let mut keys = STREAMTYPE.to_vec();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), STREAMTYPE.len());
        assert_eq!(STREAMTYPE.len(), 79);
    }
}
