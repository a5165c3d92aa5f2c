//! The sustained-churn run as a table, a line per sample, and a plot.

use std::path::Path;

use plotters::prelude::*;

use crate::churn::{Churn, Sample};

const TASKS: &str = "taskq_tasks";

/// The dead tuples of every taskq table but the tasks table.
fn other_dead(sample: &Sample) -> i64 {
    sample
        .tables
        .iter()
        .filter(|t| t.table != TASKS)
        .map(|t| t.dead)
        .sum()
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// What was going on during a sample: "pin", "readers", both or "-".
fn phase(sample: &Sample) -> &'static str {
    match (sample.pinned, sample.readers) {
        (true, true) => "pin+readers",
        (true, false) => "pin",
        (false, true) => "readers",
        (false, false) => "-",
    }
}

/// The column heads of [`line`].
const HEAD: &str = "    t  phase         enq/s  done/s  claim p50  claim p99  tasks dead  tasks live  tasks MiB  other dead  all MiB  vacuums";

/// One sample as a line of the table.
pub(crate) fn line(sample: &Sample) -> String {
    let tasks = sample.table(TASKS);
    let all_bytes: i64 = sample.tables.iter().map(|t| t.bytes).sum();
    let (vacuums, autovacuums) = tasks.map_or((0, 0), |t| (t.vacuums, t.autovacuums));
    format!(
        "{:>5.0}  {:<12} {:>6.0}  {:>6.0}  {:>6.1} ms  {:>6.1} ms  {:>10}  {:>10}  {:>9.1}  {:>10}  {:>7.1}  {vacuums}+{autovacuums}a",
        sample.at,
        phase(sample),
        sample.enqueued_per_s,
        sample.completed_per_s,
        sample.claim_p50_ms,
        sample.claim_p99_ms,
        tasks.map_or(0, |t| t.dead),
        tasks.map_or(0, |t| t.live),
        mib(tasks.map_or(0, |t| t.bytes)),
        other_dead(sample),
        mib(all_bytes),
    )
}

/// Prints the run as a table, with a summary of each phase under it.
pub(crate) fn print(churn: &Churn) {
    println!("{HEAD}");
    for sample in &churn.samples {
        println!("{}", line(sample));
    }
    println!();
    println!(
        "offered {}/s for {} s; pin {}; readers {}; vacuums: by taskq + by autovacuum (a)",
        churn.rate,
        churn.seconds,
        churn.pin.map_or("none".to_owned(), |w| format!(
            "{} s from {} s",
            w.length, w.from
        )),
        churn.readers.map_or("none".to_owned(), |w| format!(
            "{} s from {} s",
            w.length, w.from
        )),
    );
    for name in ["-", "pin", "readers", "pin+readers"] {
        let of: Vec<&Sample> = churn.samples.iter().filter(|s| phase(s) == name).collect();
        if of.is_empty() {
            continue;
        }
        let most = |f: fn(&Sample) -> f64| of.iter().map(|s| f(s)).fold(0.0, f64::max);
        let mean = |f: fn(&Sample) -> f64| of.iter().map(|s| f(s)).sum::<f64>() / of.len() as f64;
        println!(
            "phase {name:<12} samples {:>3}  done/s mean {:>6.0}  claim p99 worst {:>7.1} ms  tasks dead most {:>8.0}  tasks MiB most {:>6.1}",
            of.len(),
            mean(|s| s.completed_per_s),
            most(|s| s.claim_p99_ms),
            most(|s| s.table(TASKS).map_or(0.0, |t| t.dead as f64)),
            most(|s| s.table(TASKS).map_or(0.0, |t| mib(t.bytes))),
        );
    }
}

/// Draws the dead tuples (tasks table and the others) and the claim p99
/// over time, the pinned and read windows shaded, into an SVG at `path`.
pub(crate) fn svg(churn: &Churn, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(320);
    let end = churn.seconds as f64;
    let dead = |s: &Sample| s.table(TASKS).map_or(0.0, |t| t.dead as f64);
    let top = churn.samples.iter().map(dead).fold(1_000.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&upper)
        .caption(
            format!("taskq on PostgreSQL, {} tasks/s: dead tuples", churn.rate),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("dead tuples")
        .draw()?;
    shade(&mut chart, churn, top)?;
    chart
        .draw_series(LineSeries::new(
            churn.samples.iter().map(|s| (s.at, dead(s))),
            &RED,
        ))?
        .label("taskq_tasks")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(LineSeries::new(
            churn.samples.iter().map(|s| (s.at, other_dead(s) as f64)),
            &BLUE,
        ))?
        .label("the other taskq tables")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.configure_series_labels().border_style(BLACK).draw()?;

    let p99_top = churn
        .samples
        .iter()
        .map(|s| s.claim_p99_ms)
        .fold(10.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&lower)
        .caption("claim latency p99 (enqueue to start)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..p99_top)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("ms")
        .draw()?;
    shade(&mut chart, churn, p99_top)?;
    chart.draw_series(LineSeries::new(
        churn.samples.iter().map(|s| (s.at, s.claim_p99_ms)),
        &BLACK,
    ))?;
    root.present()?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Shades the pinned window grey and the readers' window yellow.
fn shade(
    chart: &mut Chart<'_, '_>,
    churn: &Churn,
    top: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let windows = [
        (churn.pin, RGBColor(220, 220, 220)),
        (churn.readers, RGBColor(250, 235, 180)),
    ];
    for (window, color) in windows {
        if let Some(w) = window {
            let (from, to) = (w.from as f64, (w.from + w.length) as f64);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(from, 0.0), (to, top)],
                color.mix(0.6).filled(),
            )))?;
        }
    }
    Ok(())
}
