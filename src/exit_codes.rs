//! Process exit codes (also in `--help` and the README).

use std::process::ExitCode;

/// What the process exits with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: `scan --fail-on` found something at or above the severity.
    Findings = 1,
    /// 2: an error (arguments, config, unreadable input, rejects under `--strict`).
    Error = 2,
    /// 75 (EX_TEMPFAIL): another run holds the output or history directory; try again later.
    Locked = 75,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_stable() {
        assert_eq!(Exit::Ok as u8, 0);
        assert_eq!(Exit::Findings as u8, 1);
        assert_eq!(Exit::Error as u8, 2);
        assert_eq!(Exit::Locked as u8, 75);
    }
}
