//! Kill points for fault-injection tests, compiled in only with the
//! `failpoints` feature. `TASKQ_FAILPOINTS=after-effect=0.01,before-commit=0.005`
//! makes the process abort at those points with those probabilities, the
//! way a crash or a `SIGKILL` would stop it there.
//!
//! The points: `after-effect` (a handler finished, its result not yet
//! recorded), `before-commit` (writes of a completion done, the commit not
//! yet made), `inside-completion` (PostgreSQL: a completion with follow-ups
//! deleted the task, the follow-ups not yet inserted), `handed-over` (an
//! enqueue inserted its task claimed for an idle worker of the process,
//! the lease not yet handed to it).

/// Aborts the process here with the probability configured for `name`.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &str) {
    use std::sync::OnceLock;
    static POINTS: OnceLock<Vec<(String, f64)>> = OnceLock::new();
    let points = POINTS.get_or_init(|| {
        std::env::var("TASKQ_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|point| {
                let (name, probability) = point.split_once('=')?;
                Some((name.trim().to_string(), probability.trim().parse().ok()?))
            })
            .collect()
    });
    if let Some((_, probability)) = points.iter().find(|(point, _)| point == name) {
        if fastrand::f64() < *probability {
            eprintln!("taskq: failpoint {name} hit; aborting");
            std::process::abort();
        }
    }
}

/// Does nothing without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_name: &str) {}
