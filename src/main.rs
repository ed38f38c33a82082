use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
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
