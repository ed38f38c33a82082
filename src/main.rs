use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = diversion_audit::cli::Cli::parse();
    match diversion_audit::run::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("diversion-audit: error: {e:#}");
            diversion_audit::run::Exit::Error.into()
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
