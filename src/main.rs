//! The `loa` binary: parse the command line and hand over to the library.

use clap::Parser;

// glibc's allocator, not mimalloc: once the HTTP client was hyper's own, mimalloc made no
// measurable difference to a fan-out, and it kept the idle daemon with 10,000 announcements at
// 58 MiB of RSS instead of 38 MiB (issue 3's bound is 50 MB).

fn main() -> std::process::ExitCode {
    loa::cli::run(loa::cli::Cli::parse())
}
