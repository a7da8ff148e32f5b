//! A fixture suite for the memory-backend self-test (`harness/tests/memory.rs`), run with
//! `CLUSTER_SIM_BACKEND=memory`: fresh clusters that pass, fail (their node logs collected)
//! and time out, a shared group handed on and then replaced, and the backend's cleanup and
//! lookup capabilities as a test sees them. Paths are relative: a memory node's files live in
//! its working directory.

mod memory {
    pub mod fresh;
    pub mod shared;
}

fn main() {
    harness::main()
}
