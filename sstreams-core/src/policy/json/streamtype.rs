//! Applying the keys of one `s[]` entry onto a streamtype spec
//!
//! Keys overwrite whatever the spec held, so the same code serves a fresh streamtype and an
//! overlay onto an existing one.

use jsonc_parser::ast::{Object, Value};
use jsonc_parser::common::Ranged;

use super::super::error::{PolicyError, PolicyErrorKind as K, PolicyWarningKind as W};
use super::super::spec::{
    DEFAULT_BUFLEN, MetadataSpec, OptionSpec, Protocol, RespMapSpec, StreamTypeSpec,
};
use super::{Def, Loader, keys};

pub(super) fn apply<'t>(
    l: &mut Loader<'t>,
    st: &mut StreamTypeSpec,
    body: &Object<'t>,
    path: &str,
) -> Result<(), PolicyError> {
    let mut present = Vec::new();
    for prop in &body.properties {
        let key = prop.name.as_str();
        let kp = format!("{path}.{key}");
        l.mark(&kp, prop);
        let v = &prop.value;
        let off = prop.range.start;
        let known = apply_key(l, st, key, v, &kp, off)?;
        if known {
            present.push((key, off));
        } else {
            l.unknown_key(prop, kp, keys::STREAMTYPE);
        }
    }
    // Keys of another protocol family do nothing; say so.
    for (key, off) in present {
        let k = keys::STREAMTYPE
            .iter()
            .find(|k| **k == key)
            .copied()
            .unwrap_or_default();
        let mqtt_only = k.starts_with("mqtt_") || k == "aws_iot";
        let http_only = (k.starts_with("http_") && k != "http_url" && k != "http_cookies")
            || k.starts_with("ws_")
            || k == "nghttp2_quirk_end_stream"
            || k == "h2q_oflow_txcr"
            || k == "long_poll";
        let no_effect = match st.protocol {
            Protocol::Mqtt => http_only,
            Protocol::Raw => http_only || mqtt_only,
            _ => mqtt_only,
        };
        if no_effect {
            let kind = W::NoEffect {
                key: k,
                protocol: st.protocol.name(),
            };
            l.warn(format!("{path}.{key}"), off, kind);
        }
    }
    Ok(())
}

/// Applies one key; `false` when the key is unknown
fn apply_key<'t>(
    l: &mut Loader<'t>,
    st: &mut StreamTypeSpec,
    key: &str,
    v: &Value<'t>,
    kp: &str,
    off: usize,
) -> Result<bool, PolicyError> {
    let u8_ = |l: &Loader<'t>| l.uint(v, kp, u8::MAX.into()).map(|n| n as u8);
    let u16_ = |l: &Loader<'t>| l.uint(v, kp, u16::MAX.into()).map(|n| n as u16);
    let u32_ = |l: &Loader<'t>| l.uint(v, kp, u32::MAX.into()).map(|n| n as u32);
    let buflen = |l: &Loader<'t>| {
        // 0 selects the default, as in C.
        u32_(l).map(|n| if n == 0 { DEFAULT_BUFLEN } else { n })
    };
    let h = &mut st.http;
    let m = &mut st.mqtt;
    match key {
        // General and transport
        "endpoint" => st.endpoint = l.opt_string(v, kp)?,
        "port" => st.port = u16_(l)?,
        "protocol" => {
            let name = l.string(v, kp)?;
            st.protocol = Protocol::from_name(&name)
                .ok_or_else(|| l.err(kp, v.range().start, K::UnknownProtocol(name)))?;
        }
        "tls" => st.tls = l.boolean(v, kp)?,
        "client_cert" => {
            st.client_cert = match v {
                Value::NullKeyword(_) => None,
                // C stores N + 1 in a byte, so N is at most 254.
                v => Some(l.uint(v, kp, 254)? as u8),
            }
        }
        "tls_trust_store" => st.tls_trust_store = reference(l, v, kp, Def::TrustStore)?,
        "retry" => st.retry = reference(l, v, kp, Def::Retry)?,
        "timeout_ms" => st.timeout_ms = u32_(l)?,
        "opportunistic" => st.opportunistic = l.boolean(v, kp)?,
        "nailed_up" => st.nailed_up = l.boolean(v, kp)?,
        "allow_redirects" => st.allow_redirects = l.boolean(v, kp)?,
        "attr_priority" => st.attr.priority = u8_(l)?,
        "attr_low_latency" => st.attr.low_latency = l.boolean(v, kp)?,
        "attr_high_throughput" => st.attr.high_throughput = l.boolean(v, kp)?,
        "attr_high_reliability" => st.attr.high_reliability = l.boolean(v, kp)?,
        "attr_low_cost" => st.attr.low_cost = l.boolean(v, kp)?,
        "swake_validity" => st.swake_validity = l.boolean(v, kp)?,
        "perf" => st.perf = l.boolean(v, kp)?,
        "metadata" => st.metadata = metadata(l, v, kp)?,
        "use_auth" => st.use_auth = reference(l, v, kp, Def::Auth)?,
        "aws_region" => st.aws_region = l.opt_string(v, kp)?,
        "aws_service" => st.aws_service = l.opt_string(v, kp)?,
        "direct_proto_str" => st.direct_proto_str = l.boolean(v, kp)?,
        "rideshare" => st.rideshare = l.opt_string(v, kp)?,
        "payload_fmt" => st.payload_fmt = l.opt_string(v, kp)?,
        "local_sink" => st.local_sink = l.boolean(v, kp)?,
        "via-socks5" => st.via_socks5 = l.opt_string(v, kp)?,
        "urgent_tx" => st.urgent_tx = l.boolean(v, kp)?,
        "urgent_rx" => st.urgent_rx = l.boolean(v, kp)?,
        "plugins" => l.warn(kp.to_owned(), off, W::Deprecated("plugins")),
        // Server
        "server" => st.server = l.boolean(v, kp)?,
        "server_cert" => st.server_cert = reference(l, v, kp, Def::Cert)?,
        "server_key" => st.server_key = reference(l, v, kp, Def::Cert)?,
        "options" => st.options = options(l, v, kp)?,
        // HTTP family
        "http_method" => h.method = l.opt_string(v, kp)?,
        "http_url" => h.url = l.opt_string(v, kp)?,
        "http_expect" => h.expect = u16_(l)?,
        "http_fail_redirect" => h.fail_redirect = l.boolean(v, kp)?,
        "http_resp_map" => h.resp_map = resp_map(l, v, kp)?,
        "http_auth_header" => h.auth_header = l.opt_string(v, kp)?,
        "http_auth_preamble" => h.auth_preamble = l.opt_string(v, kp)?,
        "auth_hexify" => h.auth_hexify = l.boolean(v, kp)?,
        "http_dsn_header" => h.dsn_header = l.opt_string(v, kp)?,
        "http_fwv_header" => h.fwv_header = l.opt_string(v, kp)?,
        "http_devtype_header" => h.devtype_header = l.opt_string(v, kp)?,
        "http_no_content_length" => h.no_content_length = l.boolean(v, kp)?,
        "http_www_form_urlencoded" => h.www_form_urlencoded = l.boolean(v, kp)?,
        "http_multipart_name" => h.multipart_name = l.opt_string(v, kp)?,
        "http_multipart_filename" => h.multipart_filename = l.opt_string(v, kp)?,
        "http_mime_content_type" => h.mime_content_type = l.opt_string(v, kp)?,
        "http_multipart_ss_in" => h.multipart_ss_in = l.boolean(v, kp)?,
        "http_cookies" => h.cookies = l.boolean(v, kp)?,
        "nghttp2_quirk_end_stream" => h.nghttp2_quirk_end_stream = l.boolean(v, kp)?,
        "h2q_oflow_txcr" => h.h2q_oflow_txcr = l.boolean(v, kp)?,
        "long_poll" => h.long_poll = l.boolean(v, kp)?,
        // ws
        "ws_subprotocol" => st.ws.subprotocol = l.opt_string(v, kp)?,
        "ws_binary" => st.ws.binary = l.boolean(v, kp)?,
        "ws_prioritize_reads" => st.ws.prioritize_reads = l.boolean(v, kp)?,
        // MQTT
        "mqtt_topic" => m.topic = l.opt_string(v, kp)?,
        "mqtt_subscribe" => m.subscribe = l.opt_string(v, kp)?,
        "mqtt_qos" => m.qos = u8_(l)?,
        "mqtt_retain" => m.retain = l.boolean(v, kp)?,
        "mqtt_keep_alive" => m.keep_alive = u16_(l)?,
        "mqtt_clean_start" => m.clean_start = l.boolean(v, kp)?,
        "mqtt_will_topic" => m.will_topic = l.opt_string(v, kp)?,
        "mqtt_will_message" => m.will_message = l.opt_string(v, kp)?,
        "mqtt_will_qos" => m.will_qos = u8_(l)?,
        "mqtt_will_retain" => m.will_retain = l.boolean(v, kp)?,
        "mqtt_birth_topic" => m.birth_topic = l.opt_string(v, kp)?,
        "mqtt_birth_message" => m.birth_message = l.opt_string(v, kp)?,
        "mqtt_birth_qos" => m.birth_qos = u8_(l)?,
        "mqtt_birth_retain" => m.birth_retain = l.boolean(v, kp)?,
        "aws_iot" => m.aws_iot = l.boolean(v, kp)?,
        // Proxy buffers
        "proxy_buflen" => st.buffers.proxy_buflen = buflen(l)?,
        "proxy_buflen_rxflow_on_above" => st.buffers.proxy_buflen_rxflow_on_above = u32_(l)?,
        "proxy_buflen_rxflow_off_below" => st.buffers.proxy_buflen_rxflow_off_below = u32_(l)?,
        "client_buflen" => st.buffers.client_buflen = buflen(l)?,
        "client_buflen_rxflow_on_above" => st.buffers.client_buflen_rxflow_on_above = u32_(l)?,
        "client_buflen_rxflow_off_below" => st.buffers.client_buflen_rxflow_off_below = u32_(l)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// A name referring to a retry scheme, trust store, auth or cert; `null` clears it
fn reference<'t>(
    l: &Loader<'t>,
    v: &Value<'t>,
    kp: &str,
    def: Def,
) -> Result<Option<String>, PolicyError> {
    let Some(name) = l.opt_string(v, kp)? else {
        return Ok(None);
    };
    if !l.base_has(def, &name) {
        l.check_forward(def, &name, kp, v.range().start)?;
    }
    Ok(Some(name))
}

/// `metadata: [ { "<name>": "<header:>" | "", ... }, ... ]`
fn metadata<'t>(
    l: &mut Loader<'t>,
    v: &Value<'t>,
    kp: &str,
) -> Result<Vec<MetadataSpec>, PolicyError> {
    let mut out: Vec<MetadataSpec> = Vec::new();
    for el in l.array(v, kp)? {
        for p in &l.object(el, kp)?.properties {
            let name = p.name.as_str();
            if out.iter().any(|m| m.name == name) {
                let kind = K::Duplicate {
                    what: "metadata",
                    name: name.to_owned(),
                };
                return Err(l.err(kp, p.range.start, kind));
            }
            let header = l.string(&p.value, &format!("{kp}.{name}"))?;
            out.push(MetadataSpec {
                name: name.to_owned(),
                header,
            });
        }
    }
    Ok(out)
}

/// `http_resp_map: [ { "<status>": <state> }, ... ]`
fn resp_map<'t>(l: &Loader<'t>, v: &Value<'t>, kp: &str) -> Result<Vec<RespMapSpec>, PolicyError> {
    let mut out = Vec::new();
    for el in l.array(v, kp)? {
        for p in &l.object(el, kp)?.properties {
            let status_text = p.name.as_str();
            let status = status_text
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|s| (100..=999).contains(s))
                .ok_or_else(|| {
                    let kind = K::OutOfRange {
                        value: status_text.to_owned(),
                        min: 100,
                        max: 999,
                    };
                    l.err(kp, p.range.start, kind)
                })?;
            let state = l.uint(&p.value, kp, u16::MAX.into())? as u16;
            out.push(RespMapSpec { status, state });
        }
    }
    Ok(out)
}

/// `options: { "<name>": "<value>" }`, or an array of such objects
fn options<'t>(l: &Loader<'t>, v: &Value<'t>, kp: &str) -> Result<Vec<OptionSpec>, PolicyError> {
    let objects: Vec<&Object<'t>> = match v {
        Value::Object(o) => vec![o],
        Value::Array(a) => a
            .elements
            .iter()
            .map(|e| l.object(e, kp))
            .collect::<Result<_, _>>()?,
        other => return Err(l.wrong(other, kp, "an object")),
    };
    let mut out = Vec::new();
    for o in objects {
        for p in &o.properties {
            let value = l.string(&p.value, &format!("{kp}.{}", p.name.as_str()))?;
            out.push(OptionSpec {
                name: p.name.as_str().to_owned(),
                value,
            });
        }
    }
    Ok(out)
}
