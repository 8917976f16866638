//! The `loa` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    loa::cli::run(loa::cli::Cli::parse())
}
