//! 1,000 trivial trials that need no cluster, run by this harness (the benchmark's subject).

mod trivial {
    include!(concat!(env!("OUT_DIR"), "/trivial_harness.rs"));
}

fn main() {
    harness::main()
}
