//! Bar charts of the throughput history, drawn as SVG on the server: no
//! script, no library, nothing fetched.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use taskq::Throughput;

/// How many minutes a chart shows.
pub(crate) const MINUTES: usize = 60;

/// One minute's bars: completed, retried, failed for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Minute {
    pub(crate) completed: u64,
    pub(crate) retried: u64,
    pub(crate) failed: u64,
}

/// The last [`MINUTES`] minutes up to `now` of the rows that `keep`
/// selects, oldest first.
pub(crate) fn minutes(
    history: &[Throughput],
    now: SystemTime,
    keep: impl Fn(&Throughput) -> bool,
) -> Vec<Minute> {
    let mut bars = vec![Minute::default(); MINUTES];
    for row in history.iter().filter(|row| keep(row)) {
        let ago = now.duration_since(row.minute).unwrap_or(Duration::ZERO);
        let index = usize::try_from(ago.as_secs() / 60).unwrap_or(usize::MAX);
        if let Some(bar) = index
            .checked_add(1)
            .and_then(|i| MINUTES.checked_sub(i))
            .and_then(|i| bars.get_mut(i))
        {
            bar.completed += row.completed;
            bar.retried += row.retried;
            bar.failed += row.failed;
        }
    }
    bars
}

/// A chart of `bars`, `width` × `height` pixels: completions up from the
/// middle line, retries and failures down from it, each half scaled to
/// its own largest minute. Only numbers go into it.
pub(crate) fn svg(bars: &[Minute], width: u32, height: u32, axis: bool) -> String {
    let top = bars.iter().map(|b| b.completed).max().unwrap_or(0).max(1);
    let bottom = bars
        .iter()
        .map(|b| b.retried + b.failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let half = f64::from(height) / 2.0;
    let step = f64::from(width) / bars.len().max(1) as f64;
    let mut out = format!(
        "<svg class=\"bars\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"tasks per minute\">"
    );
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{half}\" x2=\"{width}\" y2=\"{half}\" stroke=\"#c8ccd2\" stroke-width=\"1\"/>"
    );
    for (i, bar) in bars.iter().enumerate() {
        let x = i as f64 * step;
        let w = (step - 1.0).max(1.0);
        let up = bar.completed as f64 / top as f64 * (half - 1.0);
        let retried = bar.retried as f64 / bottom as f64 * (half - 1.0);
        let failed = bar.failed as f64 / bottom as f64 * (half - 1.0);
        let minute = MINUTES - i;
        let _ = write!(
            out,
            "<g><title>{minute} min ago: {} completed, {} retried, {} failed</title>",
            bar.completed, bar.retried, bar.failed
        );
        if bar.completed > 0 {
            let _ = write!(out, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{up:.1}\" fill=\"#3b8f5a\"/>", half - up);
        }
        if bar.retried > 0 {
            let _ = write!(out, "<rect x=\"{x:.1}\" y=\"{half:.1}\" width=\"{w:.1}\" height=\"{retried:.1}\" fill=\"#d39b2a\"/>");
        }
        if bar.failed > 0 {
            let _ = write!(out, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{failed:.1}\" fill=\"#c0392b\"/>", half + retried);
        }
        out.push_str("</g>");
    }
    if axis {
        let _ = write!(
            out,
            "<text x=\"2\" y=\"12\" font-size=\"11\" fill=\"#555\">{top}/min</text><text x=\"2\" y=\"{}\" font-size=\"11\" fill=\"#555\">{bottom}/min</text><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#555\" text-anchor=\"end\">now</text>",
            height - 3,
            width - 2,
            height - 3
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_land_in_the_bar_of_their_minute() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(3600 * 24);
        let row = |ago: u64, completed| Throughput {
            minute: now - Duration::from_secs(ago),
            action: "a".into(),
            completed,
            retried: 0,
            failed: 1,
        };
        let history = [row(30, 5), row(90, 7), row(4000, 9)];
        let bars = minutes(&history, now, |_| true);
        assert_eq!(bars.len(), MINUTES);
        assert_eq!(bars[MINUTES - 1].completed, 5);
        assert_eq!(bars[MINUTES - 2].completed, 7);
        assert_eq!(
            bars.iter().map(|b| b.failed).sum::<u64>(),
            2,
            "the old row is left out"
        );
        let drawn = svg(&bars, 300, 60, true);
        assert!(drawn.starts_with("<svg") && drawn.ends_with("</svg>"));
        assert_eq!(drawn.matches("fill=\"#3b8f5a\"").count(), 2);
    }
}
