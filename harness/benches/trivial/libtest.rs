//! The same 1,000 trivial tests under plain libtest (the benchmark's baseline).

mod trivial {
    include!(concat!(env!("OUT_DIR"), "/trivial_libtest.rs"));
}
