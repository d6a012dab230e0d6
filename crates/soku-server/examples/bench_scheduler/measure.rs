//! What the benchmark reads of the machine and of its own figures: percentiles, CPU time
//! from `/proc`, the load average.

pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU time counters, in clock ticks: (all CPUs busy, this process, all `postgres` processes).
pub fn cpu_ticks() -> (u64, u64, u64) {
    let busy = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_owned();
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            Some(
                f.iter()
                    .take(8)
                    .enumerate()
                    .filter(|(i, _)| *i != 3 && *i != 4)
                    .map(|(_, v)| v)
                    .sum(),
            )
        })
        .unwrap_or(0);
    let proc_ticks = |path: &str| -> Option<(String, u64)> {
        let stat = std::fs::read_to_string(path).ok()?;
        let (head, rest) = stat.rsplit_once(") ")?;
        let comm = head.split_once('(')?.1.to_owned();
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some((
            comm,
            f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        ))
    };
    let me = proc_ticks("/proc/self/stat").map_or(0, |(_, t)| t);
    let mut pg = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            match proc_ticks(&format!("/proc/{pid}/stat")) {
                Some((comm, t)) if comm == "postgres" => pg += t,
                _ => {}
            }
        }
    }
    (busy, me, pg)
}

/// "this process X %, postgres Y % (of one CPU), others Z % (of all CPUs)" between two samples.
pub fn cpu_report(a: (u64, u64, u64), b: (u64, u64, u64), secs: f64) -> String {
    let hz = 100.0; // USER_HZ
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let me = (b.1 - a.1) as f64 / hz / secs * 100.0;
    let pg = (b.2.saturating_sub(a.2)) as f64 / hz / secs * 100.0;
    let other = ((b.0 - a.0) as f64 / hz / secs * 100.0 - me - pg).max(0.0) / ncpu;
    format!(
        "this process {me:.0} %, postgres {pg:.0} % (of one CPU); everything else {other:.0} % of all CPUs"
    )
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
