//! `manifest.json`: the evidence record of a run (电子数据). Which tool and version, with which
//! command line and config (and the config's SHA-256), read which inputs (path, size, modification
//! time, SHA-256, rows) and wrote which outputs (SHA-256 of each). `diversion-audit verify DIR`
//! re-hashes both sides against it.
//!
//! The inputs are hashed on a thread of their own, started when they are listed, at a lower CPU
//! priority, so that it runs in the gaps the load and the rules leave ([`Hashing`]); the outputs
//! are hashed as they are written ([`HashingWriter`]), and those written otherwise or changed
//! since are read back, before they are published with the manifest.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const FILE: &str = "manifest.json";
pub const VERSION: u32 = 1;

/// One file read by the run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InputFile {
    /// `cdr`, `joins`, `sms`, `ip-country`, `config`, `allowlist`, `history`, `ledger`, `sales`.
    pub role: String,
    /// As the run named it (what outputs and messages show).
    pub path: String,
    /// Where `verify` looks for it.
    pub absolute: String,
    pub size: u64,
    /// Modification time, UTC, RFC 3339 (nanoseconds).
    pub modified: Option<String>,
    pub sha256: String,
    /// Rows read from it (after rejects and duplicates), where the run counts them.
    pub rows: Option<u64>,
}

/// One file written by the run, relative to the output directory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub tool: String,
    pub version: String,
    /// `scan`, `cards`.
    pub command: String,
    pub argv: Vec<String>,
    pub cwd: String,
    pub created_at: String,
    /// SHA-256 of `config` as JSON (the config in force: file and flags together).
    pub config_sha256: String,
    pub config: serde_json::Value,
    pub inputs: Vec<InputFile>,
    /// Every file of the published set but this manifest, sorted by path.
    pub outputs: Vec<OutputFile>,
    /// Where `outputs` are, relative to the manifest's directory, when not there (`normalize`'s
    /// `_evidence/ID.json`: `..`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

/// The SHA-256 (lower-case hex) and size of a file's bytes.
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

/// A writer that hashes what passes through it, so [`super::write_atomic`]'s files need not be
/// read back for the manifest: hashing ~210 MB of a 10 M-row scan's outputs again took 0.1 s of
/// wall time after the last write, while the write itself leaves a core idle (it waits on fsync).
pub struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hash: Sha256::new(), size: 0 }
    }
    /// The size and SHA-256 of what was written.
    pub fn finish(self) -> (u64, String) {
        (self.size, hex::encode(self.hash.finalize()))
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(b)?;
        self.hash.update(&b[..k]);
        self.size += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What a file was when written: its inode, size and modification time, and its bytes' SHA-256.
struct Written {
    ino: u64,
    size: u64,
    modified: std::time::SystemTime,
    sha256: String,
}

/// The files this process wrote through [`super::write_atomic`], by path.
static WRITTEN: std::sync::Mutex<std::collections::BTreeMap<PathBuf, Written>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

#[cfg(unix)]
fn ino(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}
#[cfg(not(unix))]
fn ino(_: &std::fs::Metadata) -> u64 {
    0
}

/// Record the hash [`HashingWriter`] took of `path` ([`HashingWriter::finish`]), whose metadata after
/// the last write was `m`.
pub fn remember_written(path: &Path, m: &std::fs::Metadata, (size, sha256): (u64, String)) {
    let (Ok(modified), true) = (m.modified(), m.len() == size) else { return };
    let entry = Written { ino: ino(m), size, modified, sha256 };
    WRITTEN.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_path_buf(), entry);
}

/// The size and SHA-256 of an output: as taken while it was written when the file is still that
/// file (same inode, size and modification time), else read from disk. The outputs are in the
/// run's own staging directory, which nothing else writes to.
fn output_sha256(path: &Path) -> std::io::Result<(u64, String)> {
    let known = WRITTEN.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
    if let (Some(w), Ok(m)) = (known, std::fs::metadata(path))
        && ino(&m) == w.ino
        && m.len() == w.size
        && m.modified().ok() == Some(w.modified)
    {
        return Ok((w.size, w.sha256));
    }
    sha256_file(path)
}

pub fn sha256_bytes(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn modified(m: &std::fs::Metadata) -> Option<String> {
    let t: chrono::DateTime<chrono::Utc> = m.modified().ok()?.into();
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}

/// One input's record; `rows` is filled in later by the command.
pub fn input_file(role: &str, path: &Path) -> Result<InputFile> {
    let shown = path.display().to_string();
    let before = std::fs::metadata(path).with_context(|| format!("{shown}: cannot hash (manifest)"))?;
    let (size, sha256) = sha256_file(path).with_context(|| format!("{shown}: cannot hash (manifest)"))?;
    let after = std::fs::metadata(path).with_context(|| format!("{shown}: cannot hash (manifest)"))?;
    anyhow::ensure!(
        before.len() == after.len() && before.modified().ok() == after.modified().ok() && size == after.len(),
        "{shown}: changed while it was read (size or modification time); nothing published"
    );
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(InputFile {
        role: role.to_string(),
        path: shown,
        absolute: absolute.display().to_string(),
        size,
        modified: modified(&after),
        sha256,
        rows: None,
    })
}

/// The files of each role whose SHA-256 a manifest records: `lists` as given (files, directories
/// or globs, expanded as the loaders expand them; one that does not expand is the loader's to
/// report, and the manifest is then never written) and the `single` files that exist.
pub fn files_by_role(
    lists: &[(&'static str, &[PathBuf])],
    single: &[(&'static str, Option<&PathBuf>)],
) -> Vec<(&'static str, PathBuf)> {
    let mut v = Vec::new();
    for (role, given) in lists.iter().filter(|(_, g)| !g.is_empty()) {
        v.extend(crate::load::expand_inputs(given).unwrap_or_default().into_iter().map(|p| (*role, p)));
    }
    v.extend(single.iter().filter_map(|(r, p)| p.filter(|p| p.is_file()).map(|p| (*r, p.clone()))));
    v
}

/// The inputs, hashed on a background thread while the run reads them.
pub struct Hashing(std::thread::JoinHandle<Result<Vec<InputFile>>>);

impl Hashing {
    pub fn start(files: Vec<(&'static str, PathBuf)>) -> Self {
        Self(std::thread::spawn(move || {
            lower_priority();
            files.iter().map(|(role, p)| input_file(role, p)).collect()
        }))
    }

    pub fn finish(self) -> Result<Vec<InputFile>> {
        self.0.join().map_err(|_| anyhow::anyhow!("hashing the inputs failed (thread panicked)"))?
    }
}

/// This thread runs only on a core the load's and the rules' threads leave idle (Linux
/// `SCHED_IDLE` for this thread; else the lowest nice value). Hashing a 1.3 GB export takes ~1 s
/// of a core, which at nice 10 came out of the load's own time (measured: load 2.8 -> 3.4 s at
/// 10 M rows); when the scan waits for the hashes the core is idle and the thread runs at full speed.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid, sched_setscheduler and setpriority on this thread's id only change this
    // thread's scheduling.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        let p = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &p) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        }
    }
}

/// Rows per input from the loader's file reports (matched by the path as shown).
pub fn fill_rows(inputs: &mut [InputFile], reports: &[&crate::load::FileReport]) {
    for i in inputs.iter_mut() {
        if let Some(r) = reports.iter().find(|r| r.path == i.path) {
            i.rows = Some(r.rows_read);
        }
    }
}

/// SHA-256 of a config as JSON (what manifest.json and report.html name it by).
pub fn config_sha256(config: &impl Serialize) -> Result<String> {
    Ok(sha256_bytes(&serde_json::to_vec(&serde_json::to_value(config)?)?))
}

/// The head of a manifest: everything but the outputs.
pub fn head(command: &str, config: &impl Serialize, inputs: Vec<InputFile>) -> Result<Manifest> {
    let config_sha256 = config_sha256(config)?;
    let config = serde_json::to_value(config)?;
    Ok(Manifest {
        manifest_version: VERSION,
        tool: env!("CARGO_PKG_NAME").to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        command: command.to_string(),
        argv: std::env::args().collect(),
        cwd: std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        config_sha256,
        config,
        inputs,
        outputs: Vec::new(),
        root: None,
    })
}

/// Hash every file staged in `dir` (but a manifest) and write `dir/manifest.json`; returns the
/// manifest's own SHA-256, for the log.
pub fn write(dir: &Path, m: Manifest) -> Result<String> {
    write_as(dir, Path::new(FILE), m)
}

/// [`write`] to `dir/rel` (`rel` itself left out of the outputs); a manifest below the root
/// records the way back to it.
pub fn write_as(dir: &Path, rel: &Path, mut m: Manifest) -> Result<String> {
    use rayon::prelude::*;
    let mut files = Vec::new();
    super::collect_files(dir, Path::new(""), &mut files)?;
    files.retain(|f| f != rel);
    files.sort();
    m.outputs = files
        .par_iter()
        .map(|rel| -> Result<OutputFile> {
            let (size, sha256) =
                output_sha256(&dir.join(rel)).with_context(|| format!("{}: cannot hash", rel.display()))?;
            Ok(OutputFile { path: rel.to_string_lossy().replace('\\', "/"), size, sha256 })
        })
        .collect::<Result<_>>()?;
    let depth = rel.components().count().saturating_sub(1);
    m.root = (depth > 0).then(|| vec![".."; depth].join("/"));
    let mut bytes = serde_json::to_vec_pretty(&m)?;
    bytes.push(b'\n');
    super::write_atomic(&dir.join(rel), |w| Ok(w.write_all(&bytes)?))?;
    Ok(sha256_bytes(&bytes))
}

/// The outputs a directory's manifest lists (none without a readable manifest): the files a new
/// set replaces, and drops when it does not write them again.
pub fn listed_outputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read(dir.join(FILE)) else { return Vec::new() };
    let Ok(m) = serde_json::from_slice::<Manifest>(&text) else { return Vec::new() };
    m.outputs.into_iter().map(|o| PathBuf::from(o.path)).collect()
}

/// What `verify` found for one file.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Check {
    /// `input` or `output`.
    pub side: &'static str,
    pub path: String,
    /// `ok`, `changed`, `missing` or `unreadable`.
    pub status: &'static str,
    pub expected_sha256: String,
    pub actual_sha256: Option<String>,
    pub detail: Option<String>,
}

/// Re-hash what `m` lists: inputs at their absolute paths (unless `skip_inputs`), outputs under `dir`.
pub fn verify(dir: &Path, m: &Manifest, skip_inputs: bool) -> Vec<Check> {
    use rayon::prelude::*;
    let mut todo: Vec<(&'static str, String, PathBuf, u64, &str)> = Vec::new();
    if !skip_inputs {
        for i in &m.inputs {
            todo.push(("input", i.path.clone(), PathBuf::from(&i.absolute), i.size, &i.sha256));
        }
    }
    for o in &m.outputs {
        todo.push(("output", o.path.clone(), dir.join(&o.path), o.size, &o.sha256));
    }
    todo.par_iter()
        .map(|(side, path, at, size, want)| {
            let c = |status, actual: Option<String>, detail: Option<String>| Check {
                side,
                path: path.clone(),
                status,
                expected_sha256: want.to_string(),
                actual_sha256: actual,
                detail,
            };
            match sha256_file(at) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    c("missing", None, Some(at.display().to_string()))
                }
                Err(e) => c("unreadable", None, Some(format!("{}: {e}", at.display()))),
                Ok((_, h)) if h == *want => c("ok", Some(h), None),
                Ok((n2, h)) => {
                    let d = if n2 != *size { format!("size {size} -> {n2} bytes") } else { "same size".to_string() };
                    c("changed", Some(h), Some(d))
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_bytes() {
        // FIPS 180-2, appendix B.1
        assert_eq!(sha256_bytes(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), (3, sha256_bytes(b"abc")));
    }

    #[test]
    fn a_hash_taken_while_writing_is_used_only_for_the_file_as_written() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.csv");
        let body: Vec<u8> = (0..300_000u32).flat_map(|i| format!("{i},x\n").into_bytes()).collect();
        crate::outputs::write_atomic(&p, |w| Ok(w.write_all(&body)?)).unwrap();
        assert!(WRITTEN.lock().unwrap().contains_key(&p), "write_atomic records its hash");
        assert_eq!(output_sha256(&p).unwrap(), (body.len() as u64, sha256_bytes(&body)));
        // rewritten behind the writer's back (same size, one byte changed): read from disk
        crate::outputs::write_atomic(&p, |w| Ok(w.write_all(&body)?)).unwrap();
        let mut changed = body.clone();
        changed[10] ^= 1;
        // (file times tick in steps of a few milliseconds)
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(&p, &changed).unwrap();
        assert_eq!(output_sha256(&p).unwrap(), (body.len() as u64, sha256_bytes(&changed)));
    }

    #[test]
    fn verify_names_changed_and_missing_files() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.csv");
        std::fs::write(&input, "a,b\n1,2\n").unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("x.csv"), "x\n").unwrap();
        std::fs::write(out.join("y.csv"), "y\n").unwrap();
        let m = head("scan", &serde_json::json!({"k": 1}), vec![input_file("cdr", &input).unwrap()]).unwrap();
        write(&out, m).unwrap();
        let m: Manifest = serde_json::from_slice(&std::fs::read(out.join(FILE)).unwrap()).unwrap();
        assert_eq!(m.outputs.iter().map(|o| o.path.as_str()).collect::<Vec<_>>(), ["x.csv", "y.csv"]);
        assert!(verify(&out, &m, false).iter().all(|c| c.status == "ok"));
        std::fs::write(&input, "a,b\n1,3\n").unwrap();
        std::fs::remove_file(out.join("y.csv")).unwrap();
        let got: Vec<(&str, &str)> = verify(&out, &m, false).iter().map(|c| (c.side, c.status)).collect();
        assert_eq!(got, [("input", "changed"), ("output", "ok"), ("output", "missing")]);
        assert_eq!(listed_outputs(&out), [PathBuf::from("x.csv"), PathBuf::from("y.csv")]);
    }
}
