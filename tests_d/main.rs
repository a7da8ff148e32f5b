//! Entry point of the `tests_d` test target: the module tree generated from `tests_d/` by the
//! root build script, and the harness's `main`.

include!(concat!(env!("OUT_DIR"), "/tests_d_modules.rs"));

fn main() {
    harness::main()
}
