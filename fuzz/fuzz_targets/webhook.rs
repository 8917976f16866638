//! A webhook request's body (and, from its first line, a signature header): never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(0);
    let signature = String::from_utf8_lossy(&data[..split]);
    loa::fuzzing::webhook(&signature, &data[split..]);
});
