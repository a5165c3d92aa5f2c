//! Figures, their medians, and the table and JSON they are printed as.

use std::time::Duration;

use serde::Serialize;

/// One measured run of one workload.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Tasks (or rows) per second, where the workload has a rate.
    pub rate: Option<f64>,
    /// Latency percentiles, where the workload measures latency.
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    /// The process's peak resident memory during the run, in bytes.
    pub peak_rss: Option<u64>,
    /// The latency workload's other measure: from the enqueue call to its
    /// acknowledgement (the commit), p50 and p99.
    pub enqueue_ack: Option<(Duration, Duration)>,
}

/// What a taskq figure is compared with.
#[derive(Clone, Copy, Debug, Serialize)]
pub enum Target {
    /// Rate at least `ratio` times the named baseline's rate.
    RatioOf { baseline: &'static str, ratio: f64 },
    /// Latency percentiles at most these, in milliseconds.
    Latency { p50_ms: f64, p99_ms: f64 },
    /// Peak resident memory at most this, in MiB.
    PeakRss { mib: f64 },
    /// No target: a baseline itself.
    None,
}

/// The medians of several runs of one workload on one backend.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub backend: &'static str,
    pub workload: &'static str,
    pub runs: usize,
    pub rate: Option<f64>,
    /// Each run's rate, in the order of the passes.
    pub rates: Vec<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub target: Target,
    /// This figure over its baseline's, where the target is a ratio: the
    /// median of each pass's own ratio when both ran in every pass (each
    /// pass measures both minutes apart at most), else of the medians.
    pub ratio: Option<f64>,
    /// Whether the target was met; `None` for baselines.
    pub met: Option<bool>,
}

pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// The `q` quantile (0.0 to 1.0) of some durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

impl Figure {
    pub fn from_runs(
        backend: &'static str,
        workload: &'static str,
        runs: &[Run],
        target: Target,
    ) -> Self {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        Figure {
            backend,
            workload,
            runs: runs.len(),
            rate: median(runs.iter().filter_map(|r| r.rate).collect()),
            rates: runs.iter().filter_map(|r| r.rate).collect(),
            p50_ms: median(runs.iter().filter_map(|r| ms(r.p50)).collect()),
            p99_ms: median(runs.iter().filter_map(|r| ms(r.p99)).collect()),
            peak_rss_mib: runs
                .iter()
                .filter_map(|r| r.peak_rss)
                .max()
                .map(|b| b as f64 / (1024.0 * 1024.0)),
            target,
            ratio: None,
            met: None,
        }
    }
}

/// Fills in ratios and verdicts once every figure of a backend is known.
pub fn judge(figures: &mut [Figure]) {
    let rates: Vec<(&'static str, &'static str, Option<f64>, Vec<f64>)> = figures
        .iter()
        .map(|f| (f.backend, f.workload, f.rate, f.rates.clone()))
        .collect();
    for figure in figures.iter_mut() {
        match figure.target {
            Target::RatioOf { baseline, ratio } => {
                let base = rates.iter().find(|(backend, workload, _, _)| {
                    *backend == figure.backend && *workload == baseline
                });
                let paired = base.filter(|(_, _, _, base_rates)| {
                    !base_rates.is_empty() && base_rates.len() == figure.rates.len()
                });
                let measured = match (paired, base) {
                    (Some((_, _, _, base_rates)), _) => median(
                        figure
                            .rates
                            .iter()
                            .zip(base_rates)
                            .map(|(rate, base)| rate / base)
                            .collect(),
                    ),
                    (None, Some((_, _, Some(base), _))) => figure.rate.map(|rate| rate / base),
                    (None, _) => None,
                };
                if let Some(measured) = measured {
                    figure.ratio = Some(measured);
                    figure.met = Some(measured >= ratio);
                }
            }
            Target::Latency { p50_ms, p99_ms } => {
                if let (Some(p50), Some(p99)) = (figure.p50_ms, figure.p99_ms) {
                    figure.met = Some(p50 <= p50_ms && p99 <= p99_ms);
                }
            }
            Target::PeakRss { mib } => {
                figure.met = figure.peak_rss_mib.map(|peak| peak <= mib);
            }
            Target::None => {}
        }
    }
}

fn cell(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// Prints the figures as a Markdown table.
pub fn print_table(figures: &[Figure]) {
    println!(
        "| backend | workload | tasks/s | p50 ms | p99 ms | peak RSS MiB | ratio | target | met |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |");
    for f in figures {
        let target = match f.target {
            Target::RatioOf { baseline, ratio } => format!("≥ {ratio}× {baseline}"),
            Target::Latency { p50_ms, p99_ms } => format!("p50 ≤ {p50_ms} ms, p99 ≤ {p99_ms} ms"),
            Target::PeakRss { mib } => format!("peak RSS ≤ {mib} MiB"),
            Target::None => "baseline".to_string(),
        };
        let met = match f.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f.backend,
            f.workload,
            cell(f.rate, 0),
            cell(f.p50_ms, 2),
            cell(f.p99_ms, 2),
            cell(f.peak_rss_mib, 1),
            f.ratio
                .map_or_else(|| "-".to_string(), |r| format!("{r:.2}×")),
            target,
            met
        );
    }
}

/// Peak resident memory of this process since the last reset, in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Starts a new peak-memory measurement (Linux: resets VmHWM).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_is_the_median_of_each_pass_s_own() {
        let run = |rate: f64| Run {
            rate: Some(rate),
            ..Run::default()
        };
        let base = [100.0, 400.0, 300.0].map(run);
        let taskq = [90.0, 200.0, 310.0].map(run);
        let target = Target::RatioOf {
            baseline: "raw",
            ratio: 0.8,
        };
        let mut figures = [
            Figure::from_runs("b", "raw", &base, Target::None),
            Figure::from_runs("b", "taskq", &taskq, target),
        ];
        judge(&mut figures);
        // Each pass: 0.9, 0.5, 1.03; the medians alone would give 200/300.
        assert_eq!(figures[1].ratio, Some(0.9));
        assert_eq!(figures[1].met, Some(true));
        // Runs missing from one side: the medians' ratio.
        let mut figures = [
            Figure::from_runs("b", "raw", &base[..2], Target::None),
            Figure::from_runs("b", "taskq", &taskq, target),
        ];
        judge(&mut figures);
        assert_eq!(figures[1].ratio, Some(200.0 / 400.0));
        assert_eq!(figures[1].met, Some(false));
    }

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(Vec::new()), None);
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
    }
}
