//! A fixture suite for the attach self-test (`harness/tests/keep.rs`), run with
//! `CLUSTER_SIM_CLUSTER` naming a live 2-node cluster: a test that leaves faults behind for the
//! harness to undo.

mod attach {
    pub mod faults;
}

fn main() {
    harness::main()
}
