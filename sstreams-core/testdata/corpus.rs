// Test policies: every policy of the C project's examples (`policies/`, `@VAR@` placeholders
// substituted) and our own (`sstreams/`). Shared by tests and build scripts with `include!`.

/// `(file name, JSON text)` of every test policy, sorted by name
#[allow(dead_code)]
fn test_policies() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if root.ends_with("sstreams-core") { root.to_path_buf() } else { root.join("../sstreams-core") };
    let mut out = Vec::new();
    for dir in ["testdata/policies", "testdata/sstreams"] {
        let dir = root.join(dir);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("readable testdata directory").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if !(name.ends_with(".json") || name.ends_with(".json.in")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            out.push((name, substitute_ctest_vars(&text)));
        }
    }
    out.sort();
    out
}

/// Replaces the C ctest `@VAR@` placeholders: the server name with `localhost`, and each
/// `@PORT_…@` with a distinct port (7600 + its index in first-seen order)
#[allow(dead_code)]
fn substitute_ctest_vars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut ports: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('@') {
        let after = &rest[start + 1..];
        let Some(len) = after.find('@') else { break };
        let var = &after[..len];
        let is_var = !var.is_empty() && var.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !is_var {
            out.push_str(&rest[..=start]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..start]);
        if var == "LWS_CTEST_SERVER_RESOLVE" {
            out.push_str("localhost");
        } else {
            let i = ports.iter().position(|p| p == var).unwrap_or_else(|| {
                ports.push(var.to_owned());
                ports.len() - 1
            });
            out.push_str(&(7600 + i).to_string());
        }
        rest = &after[len + 1..];
    }
    out.push_str(rest);
    out
}
