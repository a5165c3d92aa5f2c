//! A ledger of when handlers ran, for limits tests across processes.

/// The most runs that overlap, of runs given as (start, end) times in
/// microseconds on one clock: a run that ends at the moment another
/// starts does not overlap it.
pub fn max_overlap(runs: &[(u64, u64)]) -> usize {
    let mut events: Vec<(u64, bool)> = runs
        .iter()
        .flat_map(|&(start, end)| [(start, true), (end, false)])
        .collect();
    // Ends before starts at the same time.
    events.sort_unstable();
    let (mut now, mut most) = (0usize, 0usize);
    for (_, starts) in events {
        if starts {
            now += 1;
            most = most.max(now);
        } else {
            now -= 1;
        }
    }
    most
}

/// A run as a handler prints it: `START END`, microseconds since the Unix
/// epoch.
pub fn parse_run(line: &str) -> (u64, u64) {
    let (start, end) = line.split_once(' ').expect("START END");
    (start.parse().unwrap(), end.parse().unwrap())
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_micros()).unwrap()
}

#[test]
fn overlaps_are_counted_and_touching_runs_are_not() {
    assert_eq!(max_overlap(&[]), 0);
    assert_eq!(max_overlap(&[(1, 5), (5, 9), (9, 10)]), 1);
    assert_eq!(max_overlap(&[(1, 5), (2, 3), (4, 9), (4, 6)]), 3);
}
