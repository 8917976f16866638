//! The `loa` binary: parse the command line and hand over to the library.

use clap::Parser;

// A fan-out allocates and frees small buffers on several threads at once (requests, rows, JSON);
// glibc's allocator spent a fifth of the daemon's time there, mimalloc a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    loa::cli::run(loa::cli::Cli::parse())
}
