//! `sc doctor`: placeholder replaced below.
pub fn run_cli(_json: bool) -> i32 { 0 }
