//! Latency samples, throughput, and a process's memory (`/proc/PID/status`) and CPU time
//! (`/proc/PID/stat`).

use std::time::Duration;

/// The result of one workload phase.
#[derive(Debug, Default)]
pub struct Phase {
    pub name: &'static str,
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Successful request latencies, microseconds.
    pub latencies_us: Vec<u64>,
}

impl Phase {
    /// The `q`-quantile (0..=1) of successful latencies, in milliseconds (nearest rank).
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        self.latencies_us[rank] as f64 / 1000.0
    }

    pub fn per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    /// One Markdown table row.
    pub fn row(&mut self) -> String {
        let (p50, p99) = (self.quantile_ms(0.50), self.quantile_ms(0.99));
        format!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} |",
            self.name,
            self.ok,
            self.errors,
            self.per_sec(),
            p50,
            p99
        )
    }
}

/// `VmRSS` and `VmHWM` of a process, in KiB (Linux).
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User + system CPU time consumed so far by all threads of a process, in seconds (Linux).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = stat_cpu_ticks(&text)?;
    // SAFETY: `sysconf` only reads a configuration value; it has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// `utime + stime` (fields 14 and 15, clock ticks) of a `/proc/PID/stat` line. The command name
/// (field 2) is in parentheses and may contain spaces or `)`, so fields are counted after the
/// **last** `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is index 0
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut p = Phase {
            latencies_us: (1..=100).map(|v| v * 1000).collect(),
            ..Default::default()
        };
        assert_eq!(p.quantile_ms(0.5), 50.0);
        assert_eq!(p.quantile_ms(0.99), 99.0);
        assert_eq!(Phase::default().quantile_ms(0.5), 0.0);
    }

    #[test]
    fn stat_cpu_fields_are_counted_after_the_command_name() {
        let line = "1234 (we(ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0";
        assert_eq!(stat_cpu_ticks(line), Some(325));
        assert_eq!(stat_cpu_ticks("1234 (x) S 1 2"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn reads_own_cpu_time() {
        if cfg!(target_os = "linux") {
            let before = cpu_secs(std::process::id()).unwrap();
            let t = std::time::Instant::now();
            let mut x = 0u64;
            while t.elapsed() < Duration::from_millis(50) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            assert!(cpu_secs(std::process::id()).unwrap() >= before);
        }
    }

    #[test]
    fn reads_own_rss() {
        if cfg!(target_os = "linux") {
            let (rss, hwm) = rss_kib(std::process::id()).unwrap();
            assert!(rss > 0 && hwm >= rss);
        }
    }
}
