//! An announcement file's bytes, parsed and validated: a value or reported problems, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loa::fuzzing::announcement(data, None);
});
