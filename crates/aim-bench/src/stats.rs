//! Latency samples, throughput, and the server's memory from `/proc/PID/status`.

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
    fn reads_own_rss() {
        if cfg!(target_os = "linux") {
            let (rss, hwm) = rss_kib(std::process::id()).unwrap();
            assert!(rss > 0 && hwm >= rss);
        }
    }
}
