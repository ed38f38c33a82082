//! `verify DIR`: the output directory against its manifest.json (inputs and outputs re-hashed).

use crate::cli::{VerifyArgs, VerifyFormat};
use crate::exit_codes::Exit;
use crate::outputs::manifest::{self, Manifest};
use anyhow::{Context, Result};

pub fn run(args: &VerifyArgs) -> Result<Exit> {
    // a directory's manifest.json, or a manifest file (normalize's `_evidence/ID.json`)
    let path = if args.dir.is_file() { args.dir.clone() } else { args.dir.join(manifest::FILE) };
    let text = std::fs::read(&path).with_context(|| format!("{}: cannot read the manifest", path.display()))?;
    let m: Manifest =
        serde_json::from_slice(&text).with_context(|| format!("{}: not a diversion-audit manifest", path.display()))?;
    anyhow::ensure!(
        m.manifest_version == manifest::VERSION,
        "{}: manifest version {} (this tool reads {})",
        path.display(),
        m.manifest_version,
        manifest::VERSION
    );
    let root = match (&m.root, path.parent()) {
        (Some(r), Some(p)) => p.join(r),
        (None, Some(p)) => p.to_path_buf(),
        _ => args.dir.clone(),
    };
    let checks = manifest::verify(&root, &m, args.skip_inputs);
    let count = |s: &str| checks.iter().filter(|c| c.status == s).count();
    let (changed, missing, unreadable) = (count("changed"), count("missing"), count("unreadable"));
    // files beside the outputs that the manifest does not list: said, not a change of the evidence
    let listed: std::collections::BTreeSet<&str> = m.outputs.iter().map(|o| o.path.as_str()).collect();
    let mut extra = Vec::new();
    if m.root.is_none() {
        let mut files = Vec::new();
        crate::outputs::collect_files(&root, std::path::Path::new(""), &mut files)?;
        // dot-files (the lock, a run's staging directory) are no one's outputs
        let dotted = |p: &std::path::Path| p.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
        extra = files
            .iter()
            .filter(|p| !dotted(p))
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .filter(|p| p != manifest::FILE && !listed.contains(p.as_str()))
            .collect();
        extra.sort();
    }
    match args.format {
        VerifyFormat::Json => {
            let v = serde_json::json!({
                "manifest": path.display().to_string(),
                "manifest_sha256": manifest::sha256_bytes(&text),
                "created_at": m.created_at,
                "command": m.argv,
                "checks": checks,
                "not_listed": extra,
                "changed": changed, "missing": missing, "unreadable": unreadable,
            });
            let mut s = serde_json::to_string_pretty(&v)?;
            s.push('\n');
            crate::outputs::stdout(s.as_bytes())?;
        }
        VerifyFormat::Text => {
            let mut s = String::new();
            for c in checks.iter().filter(|c| c.status != "ok") {
                s.push_str(&format!(
                    "{:<10} {} {}: expected sha256 {}{}{}\n",
                    c.status.to_uppercase(),
                    c.side,
                    c.path,
                    c.expected_sha256,
                    c.actual_sha256.as_deref().map(|a| format!(", found {a}")).unwrap_or_default(),
                    c.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(),
                ));
            }
            for e in &extra {
                s.push_str(&format!("not listed {e} (not part of the run's outputs)\n"));
            }
            let (ins, outs) = (
                checks.iter().filter(|c| c.side == "input").count(),
                checks.iter().filter(|c| c.side == "output").count(),
            );
            s.push_str(&format!(
                "{}: {} input(s){} and {} output(s) checked against {} ({}, sha256 {}): {}\n",
                root.display(),
                ins,
                if args.skip_inputs { " (skipped)" } else { "" },
                outs,
                path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
                m.created_at,
                manifest::sha256_bytes(&text),
                if changed + missing + unreadable == 0 {
                    "all match".to_string()
                } else {
                    format!("{changed} changed, {missing} missing, {unreadable} unreadable")
                }
            ));
            crate::outputs::stdout(s.as_bytes())?;
        }
    }
    Ok(if unreadable > 0 {
        Exit::Error
    } else if changed + missing > 0 {
        Exit::Findings
    } else {
        Exit::Ok
    })
}
