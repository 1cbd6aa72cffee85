//! Helpers of the reliability and stress tests: periodic faults through the proxy, the
//! `FIGURES` lines docs/RELIABILITY.md is written from, and the soak switch.

#![allow(dead_code)]

use super::*;

/// Adds `faults` one-shot rules to `proxy` so that every `every`-th request matching
/// (`method`, `contains`) gets `fault`: request `every`, `2 × every`, … up to `faults` of them.
/// Deterministic in the order requests arrive, and bounded: after `faults` faults the rules are
/// spent. Returns the rule ids (for [`fault_proxy::FaultProxy::remove`]).
pub fn add_periodic_faults(
    proxy: &fault_proxy::FaultProxy,
    method: &'static str,
    contains: &'static str,
    fault: fault_proxy::Fault,
    every: u32,
    faults: u32,
) -> Vec<fault_proxy::RuleId> {
    assert!(every >= 2, "every request faulted is not a periodic fault");
    // Rule i sees every matching request except the ones earlier rules fault (i - 1 of them
    // before its turn), so it skips i × (every - 1) requests to fire on request i × every.
    (1..=faults)
        .map(|i| {
            proxy.fail(fault_proxy::Rule {
                method,
                contains,
                fault,
                count: Some(1),
                skip: i * (every - 1),
            })
        })
        .collect()
}

/// Prints one line of figures and, when `S3MOUNT_RELIABILITY_REPORT` names a file, appends it
/// there too (docs/RELIABILITY.md is written from those lines).
pub fn report_figures(line: &str) {
    println!("FIGURES {line}");
    eprintln!("FIGURES {line}");
    if let Some(path) = std::env::var_os("S3MOUNT_RELIABILITY_REPORT").filter(|p| !p.is_empty()) {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Whether `S3MOUNT_SOAK` asks for the long runs.
pub fn soak() -> bool {
    std::env::var("S3MOUNT_SOAK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A key used in a FIGURES line, so `grep FIGURES` finds every figure of a run.
pub fn figures_prefix(test: &str) -> String {
    format!("test={test}")
}

/// Longest any single file-system call may take before it counts as a hang. With the default
/// retry settings (5 attempts, 10 s connect and 30 s read timeouts) s3mount must answer well
/// within this.
pub const OP_DEADLINE: Duration = Duration::from_secs(120);
