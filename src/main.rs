use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    no_transparent_huge_pages();
    diversion_audit::enrich::phone::PhoneParser::warm_up();
    let cli = diversion_audit::cli::Cli::parse();
    // a partitioned scan frees each part before the next: mimalloc's default purging gives that
    // memory back rather than letting the parts' differently sized blocks pile up
    if !matches!(&cli.command, diversion_audit::cli::Command::Scan(a) if a.partitions > 1) {
        keep_freed_memory();
    }
    diversion_audit::signals::install();
    diversion_audit::diag::LEAVE_TO_EXIT.store(true, std::sync::atomic::Ordering::Relaxed);
    let code = match diversion_audit::commands::run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => diversion_audit::exit_codes::Exit::Ok,
        Err(e) => {
            diversion_audit::log::error(&format!("{e:#}"));
            if e.downcast_ref::<diversion_audit::lock::Locked>().is_some() {
                diversion_audit::exit_codes::Exit::Locked
            } else {
                diversion_audit::exit_codes::Exit::Error
            }
        }
    };
    // Every output is written and renamed into place, the log file is unbuffered: what is left is
    // flushing the standard streams. `_exit` then skips the allocator's teardown walk over every
    // heap (the kernel reclaims the memory either way).
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = std::io::Write::flush(&mut std::io::stderr());
    #[cfg(target_os = "linux")]
    // SAFETY: nothing after this point needs running; buffered output was flushed above
    unsafe {
        libc::_exit(code as i32)
    };
    #[allow(unreachable_code)]
    code.into()
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

/// mimalloc hands freed pages back to the kernel 10 ms after they fall free ("purging"); a scan frees
/// and reallocates column-sized blocks all the time, and each purged page is zeroed by the kernel
/// again on its next first touch. A run is short, so freed pages stay with the process until it
/// exits (10 M-row Parquet scan: system time -0.3 s, wall -0.25 s, peak +0.3 GB). An explicit
/// `MIMALLOC_PURGE_DELAY` (milliseconds; 10 is mimalloc's default) still wins.
fn keep_freed_memory() {
    unsafe extern "C" {
        fn mi_option_set(option: libc::c_int, value: libc::c_long);
    }
    // mi_option_purge_delay in the mimalloc v3 that libmimalloc-sys 0.1.49 builds
    const MI_OPTION_PURGE_DELAY: libc::c_int = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a mimalloc option; any value is valid, -1 means never purge
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

// Polars allocates and frees many large column buffers. glibc's malloc hands each back to the kernel
// and faults fresh zeroed pages in for the next (40% of a 10 M-row scan was kernel time); mimalloc
// reuses them: 10 M CSV 13.0 s -> 10.5 s, Parquet 10.5 s -> 8 s on the bench machine.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
