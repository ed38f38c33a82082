//! Output files are written to a temporary name in the target directory and renamed into place when
//! complete, so a reader (or a crash) never sees half a file.

use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Write `path` atomically through `f`.
pub fn write_atomic<F>(path: &Path, f: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create temporary file", dir.display()))?;
    let mut w = BufWriter::new(tmp);
    f(&mut w).with_context(|| format!("{}: write failed", path.display()))?;
    let tmp =
        w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("{}: write failed", path.display()))?;
    // tempfile creates 0600; outputs are ordinary files (umask still applies on creation elsewhere)
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).ok();
    }
    tmp.as_file().sync_all().with_context(|| format!("{}: sync failed", path.display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("{}: cannot rename into place", path.display()))?;
    Ok(())
}

/// `rejected.csv`: file, line, reason, raw text.
pub fn write_rejects(path: &Path, rejects: &[crate::load::Reject], excel: bool) -> Result<()> {
    use crate::report::csv_safe::cell;
    write_atomic(path, |w| {
        if excel {
            w.write_all(b"\xEF\xBB\xBF")?;
        }
        let mut c = csv::Writer::from_writer(w);
        c.write_record(["file", "line", "reason", "raw"])?;
        for r in rejects {
            let line = r.line.to_string();
            c.write_record([cell(&r.file).as_ref(), line.as_str(), r.reason.as_str(), cell(&r.raw).as_ref()])?;
        }
        c.flush()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temporary_and_keeps_old_file_on_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.csv");
        write_atomic(&p, |w| Ok(w.write_all(b"one\n")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        let r = write_atomic(&p, |w| {
            w.write_all(b"half")?;
            anyhow::bail!("disk on fire")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
