//! The callgrind mode of a criterion bench binary, shared by `storage/benches` and
//! `net/benches` through `#[path]` (a bench target cannot depend on another crate's benches).
//!
//! `<bench binary> --callgrind CASE ITERATIONS` runs CASE's measured step ITERATIONS times
//! inside [`callgrind_measured`] instead of running criterion. `perf-reports/callgrind.sh`
//! runs it under `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='*callgrind_measured*'`, so only what that function executes is counted:
//! set-up (building inputs, opening logs) and teardown are not. Instruction counts do not
//! depend on other work on the machine, which wall time on a shared 2-core box does.

/// What the command line asked for.
pub struct Request {
    pub case: String,
    pub iterations: u64,
}

/// `Some` when the binary was started as `--callgrind CASE ITERATIONS`.
pub fn requested() -> Option<Request> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--callgrind")?;
    let case = args.get(at + 1)?.clone();
    let iterations = args.get(at + 2).and_then(|n| n.parse().ok()).unwrap_or(1000);
    Some(Request { case, iterations })
}

/// Runs `step` `iterations` times; the one function whose instructions are counted.
#[inline(never)]
pub fn callgrind_measured(iterations: u64, step: &mut dyn FnMut()) {
    for _ in 0..iterations {
        step();
    }
}

/// Exits non-zero naming the cases this binary has (an unknown case must not count nothing).
pub fn unknown(case: &str, known: &[&str]) -> ! {
    eprintln!("unknown callgrind case {case:?}; this binary has {known:?}");
    std::process::exit(2)
}
