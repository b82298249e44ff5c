//! `sstreams policy check | show | to-rust`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use sstreams_core::policy::json::{self, Loaded};
use sstreams_core::policy::{Policy, PolicyError, PolicyWarning, StreamType, codegen};

/// Policy tools
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Load and validate a policy: exit 0 if valid, 1 with the key path and line:col if not
    Check {
        #[command(flatten)]
        input: Input,
        /// Treat warnings (unknown keys, deprecated keys) as errors
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print a readable summary: streamtypes, endpoints, protocols, retry schemes
    Show {
        #[command(flatten)]
        input: Input,
    },
    /// Write Rust source that builds the same policy with no JSON parser at run time
    ToRust {
        #[command(flatten)]
        input: Input,
        /// Name of the generated function
        #[arg(long = "fn", default_value = "policy")]
        fn_name: String,
    },
}

/// A policy file and overlays applied on top of it
#[derive(Debug, clap::Args)]
pub(crate) struct Input {
    /// The policy JSON file
    file: PathBuf,
    /// A policy overlay fragment to apply over FILE (repeatable, applied in order)
    #[arg(long = "overlay", value_name = "FILE")]
    overlays: Vec<PathBuf>,
}

pub(crate) fn run(cmd: PolicyCommand) -> ExitCode {
    let result = match cmd {
        PolicyCommand::Check {
            input,
            deny_warnings,
        } => check(&input, deny_warnings),
        PolicyCommand::Show { input } => {
            load(&input).map(|(p, _)| print!("{}", show(&p, &input.file)))
        }
        PolicyCommand::ToRust { input, fn_name } => load(&input).map(|(p, _)| {
            print!(
                "{}",
                codegen::to_rust(&p, &fn_name, &input.file.display().to_string())
            );
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(input: &Input, deny_warnings: bool) -> Result<(), PolicyError> {
    let (policy, warnings) = load(input)?;
    if deny_warnings && !warnings.is_empty() {
        eprintln!("error: {} warning(s) and --deny-warnings", warnings.len());
        // Reported above; the exit status says the rest.
        std::process::exit(1);
    }
    println!(
        "{}: OK ({} streamtypes, {} retry schemes, {} trust stores)",
        input.file.display(),
        policy.streamtypes().len(),
        policy.retry_schemes().len(),
        policy.trust_stores().len()
    );
    Ok(())
}

/// Loads the policy and its overlays, printing warnings to stderr with the file they are in
fn load(input: &Input) -> Result<(Policy, Vec<(PathBuf, PolicyWarning)>), PolicyError> {
    let Loaded {
        mut policy,
        warnings,
        ..
    } = json::load_path(&input.file)?;
    let mut all: Vec<_> = warnings
        .into_iter()
        .map(|w| (input.file.clone(), w))
        .collect();
    for o in &input.overlays {
        let loaded = json::load_overlay_path(&policy, o)?;
        all.extend(loaded.warnings.into_iter().map(|w| (o.clone(), w)));
        policy = loaded.policy;
    }
    for (file, w) in &all {
        eprintln!("warning: {}:{w}", file.display());
    }
    Ok((policy, all))
}

/// The `show` summary
fn show(p: &Policy, file: &Path) -> String {
    let mut o = String::new();
    let s = p.spec();
    let _ = write!(o, "policy {}", file.display());
    let meta: Vec<String> = [
        s.release.as_ref().map(|r| format!("release {r}")),
        s.product.as_ref().map(|r| format!("product {r}")),
        s.schema_version.map(|v| format!("schema {v}")),
        s.via_socks5.as_ref().map(|v| format!("via socks5 {v}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !meta.is_empty() {
        let _ = write!(o, " ({})", meta.join(", "));
    }
    o.push('\n');

    if p.retry_schemes().len() > 0 {
        o.push_str("\nretry schemes:\n");
        for r in p.retry_schemes() {
            let backoff: Vec<String> = r.backoff_ms().iter().map(u32::to_string).collect();
            let conceal = match r.conceal() {
                u16::MAX => "forever".to_owned(),
                n => n.to_string(),
            };
            let _ = write!(
                o,
                "  {:<16} backoff [{}] ms, conceal {conceal}, jitter {}%",
                r.name(),
                backoff.join(", "),
                r.jitter_percent()
            );
            if let (Some(ping), Some(hup)) = (r.validity_ping(), r.validity_hangup()) {
                let _ = write!(o, ", ping {}s, hangup {}s", ping.as_secs(), hup.as_secs());
            }
            o.push('\n');
        }
    }
    if p.trust_stores().len() > 0 {
        o.push_str("\ntrust stores:\n");
        for t in p.trust_stores() {
            let certs: Vec<&str> = t.certs().iter().map(|c| c.name.as_str()).collect();
            let _ = writeln!(o, "  {:<16} {}", t.name(), certs.join(", "));
        }
    }
    if !p.auths().is_empty() {
        o.push_str("\nauth:\n");
        for a in p.auths() {
            let ty = a.auth_type.as_deref().unwrap_or("-");
            let _ = writeln!(o, "  {:<16} type {ty}, blob {}", a.name, a.blob);
        }
    }

    let _ = writeln!(o, "\nstreamtypes ({}):", p.streamtypes().len());
    let rows: Vec<[String; 6]> = p.streamtypes().map(row).collect();
    let header = ["NAME", "ROLE", "PROTO", "ENDPOINT", "TLS", "RETRY"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for (r, st) in
        std::iter::once((&header, None)).chain(rows.iter().zip(p.streamtypes().map(Some)))
    {
        o.push_str("  ");
        for (c, w) in r.iter().zip(widths) {
            let _ = write!(o, "{c:<w$}  ");
        }
        if let Some(st) = st {
            o.push_str(&details(st));
        } else {
            o.push_str("DETAILS");
        }
        // Trailing spaces of the last column.
        while o.ends_with(' ') {
            o.pop();
        }
        o.push('\n');
    }
    o
}

fn row(st: &StreamType) -> [String; 6] {
    let role = if st.spec().local_sink {
        "sink"
    } else if st.is_server() {
        "server"
    } else {
        "client"
    };
    let endpoint = match st.endpoint() {
        Some(e) if st.port() != 0 => format!("{e}:{}", st.port()),
        Some(e) => e.to_string(),
        None if st.port() != 0 => format!("*:{}", st.port()),
        None => "-".to_owned(),
    };
    let tls = match (st.tls(), st.trust_store()) {
        (false, _) => "-".to_owned(),
        (true, Some(t)) => t.name().to_owned(),
        (true, None) if st.is_server() => "server cert".to_owned(),
        (true, None) => "OS store".to_owned(),
    };
    let retry = st.retry().map_or("-", |r| r.name()).to_owned();
    [
        st.name().to_owned(),
        role.to_owned(),
        st.protocol().to_string(),
        endpoint,
        tls,
        retry,
    ]
}

fn details(st: &StreamType) -> String {
    let s = st.spec();
    let mut d: Vec<String> = Vec::new();
    if let Some(m) = &s.http.method {
        d.push(format!(
            "{m} /{}",
            st.http_url()
                .map_or("", |u| u.as_str().trim_start_matches('/'))
        ));
    } else if let Some(u) = st.http_url() {
        d.push(format!("url /{}", u.as_str().trim_start_matches('/')));
    }
    if let Some(sp) = &s.ws.subprotocol {
        d.push(format!(
            "ws {sp}{}",
            if s.ws.binary { " binary" } else { "" }
        ));
    }
    if let Some(t) = &s.mqtt.topic {
        d.push(format!("publish {t} qos {}", s.mqtt.qos));
    }
    if let Some(t) = &s.mqtt.subscribe {
        d.push(format!("subscribe {t}"));
    }
    for (on, name) in [
        (s.nailed_up, "nailed_up"),
        (s.opportunistic, "opportunistic"),
    ] {
        if on {
            d.push(name.to_owned());
        }
    }
    if let Some(t) = st.timeout() {
        d.push(format!("timeout {}ms", t.as_millis()));
    }
    if !s.metadata.is_empty() {
        let md: Vec<&str> = s.metadata.iter().map(|m| m.name.as_str()).collect();
        d.push(format!("metadata {}", md.join(",")));
    }
    d.join("; ")
}
