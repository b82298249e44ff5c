//! System blob values that http requests carry (C `lws_system_blob`, see the inventory's
//! "blob-sourced data")
//!
//! The policy names the headers (`http_auth_header` with `http_auth_preamble`,
//! `http_dsn_header`, `http_fwv_header`, `http_devtype_header`); the values come from the
//! context's system blobs, which the driver copies into
//! [`BindContext::blobs`](super::BindContext::blobs) for each connection.

use bytes::Bytes;

/// The system blob values an http request may need
///
/// A header the policy names whose blob is `None` fails the request, as in C (where the blob
/// must be registered); an empty value sends an empty header. Default: all `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpBlobs {
    /// `AUTH[0]`, the access token sent in `http_auth_header` after `http_auth_preamble`
    pub auth: Option<Bytes>,
    /// `DEVICE_SERIAL`, sent in `http_dsn_header`
    pub device_serial: Option<Bytes>,
    /// `DEVICE_FW_VERSION`, sent in `http_fwv_header`
    pub fw_version: Option<Bytes>,
    /// `DEVICE_TYPE`, sent in `http_devtype_header`
    pub device_type: Option<Bytes>,
}

impl HttpBlobs {
    /// No values (the default)
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `AUTH[0]` token
    pub fn auth(mut self, token: impl Into<Bytes>) -> Self {
        self.auth = Some(token.into());
        self
    }

    /// Sets the `DEVICE_SERIAL` value
    pub fn device_serial(mut self, v: impl Into<Bytes>) -> Self {
        self.device_serial = Some(v.into());
        self
    }

    /// Sets the `DEVICE_FW_VERSION` value
    pub fn fw_version(mut self, v: impl Into<Bytes>) -> Self {
        self.fw_version = Some(v.into());
        self
    }

    /// Sets the `DEVICE_TYPE` value
    pub fn device_type(mut self, v: impl Into<Bytes>) -> Self {
        self.device_type = Some(v.into());
        self
    }
}
