use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = diversion_audit::cli::Cli::parse();
    diversion_audit::signals::install();
    match diversion_audit::run::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            diversion_audit::log::error(&format!("{e:#}"));
            if e.downcast_ref::<diversion_audit::lock::Locked>().is_some() {
                return diversion_audit::run::Exit::Locked.into();
            }
            diversion_audit::run::Exit::Error.into()
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// mimalloc asks for transparent huge pages on its 1 GiB arenas. A scan's first touch of a page is
/// what it pays for (the kernel zeroes it), and a 2 MB page is zeroed whole however little of it a
/// column uses: with them a 10 M-row Parquet scan zeroed ~3 GB for a 2.5 GB peak. Without:
/// peak 2.5 -> 2.2 GB, system time 3.4 -> 1.9 s, wall 5.8 -> 5.3 s (run after the DuckDB
/// reference, as the bench does). `MIMALLOC_ALLOW_THP=1` keeps them.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: a process flag; the arena already marked MADV_HUGEPAGE is then served in 4 KB pages
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

// Polars allocates and frees many large column buffers. glibc's malloc hands each back to the kernel
// and faults fresh zeroed pages in for the next (40% of a 10 M-row scan was kernel time); mimalloc
// reuses them: 10 M CSV 13.0 s -> 10.5 s, Parquet 10.5 s -> 8 s on the bench machine.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
