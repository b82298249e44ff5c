//! The built-in default policy, used when an application gives none
//!
//! The same content as the C library's hardcoded policy: a `default` retry scheme, the
//! `__default` streamtype (an https GET whose whole target comes from the `endpoint` metadata,
//! e.g. a full URL) and `captive_portal_detect`. Built from a spec, so it needs no JSON.

use super::Policy;
use super::spec::{HttpSpec, MetadataSpec, PolicySpec, Protocol, RetrySpec, StreamTypeSpec};

impl Policy {
    /// The built-in default policy
    pub fn builtin_default() -> Self {
        let md = |name: &str, header: &str| MetadataSpec {
            name: name.into(),
            header: header.into(),
        };
        let spec = PolicySpec {
            release: Some("1".into()),
            product: Some("lws_default".into()),
            schema_version: Some(1),
            retry: vec![RetrySpec {
                name: "default".into(),
                backoff: vec![1000, 2000, 3000, 5000, 10000],
                conceal: 5,
                jitterpc: 20,
                svalidping: 30,
                svalidhup: 35,
            }],
            streamtypes: vec![
                StreamTypeSpec {
                    endpoint: Some("${endpoint}".into()),
                    port: 443,
                    protocol: Protocol::H2,
                    tls: true,
                    allow_redirects: true,
                    direct_proto_str: true,
                    opportunistic: true,
                    retry: Some("default".into()),
                    timeout_ms: 2000,
                    metadata: vec![
                        md("endpoint", ""),
                        md("acc", "accept"),
                        md("ua", "user-agent"),
                    ],
                    http: HttpSpec {
                        method: Some("GET".into()),
                        url: Some(String::new()),
                        nghttp2_quirk_end_stream: true,
                        h2q_oflow_txcr: true,
                        ..HttpSpec::default()
                    },
                    ..StreamTypeSpec::named("__default")
                },
                StreamTypeSpec {
                    endpoint: Some("connectivitycheck.android.com".into()),
                    port: 80,
                    protocol: Protocol::H1,
                    opportunistic: true,
                    http: HttpSpec {
                        method: Some("GET".into()),
                        url: Some("generate_204".into()),
                        expect: 204,
                        fail_redirect: true,
                        ..HttpSpec::default()
                    },
                    ..StreamTypeSpec::named("captive_portal_detect")
                },
            ],
            ..PolicySpec::default()
        };
        // A fixed, tested spec: validation cannot fail.
        Self::from_spec(spec).expect("the built-in policy is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_default_has_the_c_streamtypes() {
        let p = Policy::builtin_default();
        let d = p.streamtype("__default").unwrap();
        assert_eq!((d.port(), d.protocol(), d.tls()), (443, Protocol::H2, true));
        assert_eq!(
            d.endpoint().unwrap().names().collect::<Vec<_>>(),
            ["endpoint"]
        );
        assert_eq!(d.metadata()[1].header_name().as_deref(), Some("accept"));
        assert_eq!(d.retry().unwrap().conceal(), 5);
        let cpd = p.streamtype("captive_portal_detect").unwrap();
        assert_eq!((cpd.port(), cpd.http().expect), (80, 204));
    }

    #[cfg(feature = "json")]
    #[test]
    fn builtin_default_equals_the_c_json() {
        let json = r#"{ "release": "1", "product": "lws_default", "schema-version": 1,
          "retry": [{ "default": { "backoff": [1000, 2000, 3000, 5000, 10000], "conceal": 5,
                                   "jitterpc": 20, "svalidping": 30, "svalidhup": 35 } }],
          "s": [{ "__default": { "endpoint": "${endpoint}", "port": 443, "protocol": "h2",
                    "http_method": "GET", "http_url": "",
                    "metadata": [{ "endpoint": "", "acc": "accept", "ua": "user-agent" }],
                    "tls": true, "allow_redirects": true, "nghttp2_quirk_end_stream": true,
                    "h2q_oflow_txcr": true, "direct_proto_str": true, "opportunistic": true,
                    "retry": "default", "timeout_ms": 2000 },
                  "captive_portal_detect": { "endpoint": "connectivitycheck.android.com",
                    "http_url": "generate_204", "port": 80, "protocol": "h1",
                    "http_method": "GET", "opportunistic": true, "http_expect": 204,
                    "http_fail_redirect": true } }] }"#;
        assert_eq!(Policy::from_json(json).unwrap(), Policy::builtin_default());
    }
}
