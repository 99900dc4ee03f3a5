//! `aim-bench auth`: login, refresh and API-key-authenticated request throughput.
//!
//! Three phases, each `--duration` seconds with `--concurrency` workers sharing one HTTP/1.1
//! keep-alive connection pool:
//! 1. `login`: `POST /api/v1/auth/login` with the given account (a full Argon2id verification each).
//! 2. `refresh`: each worker logs in once, then rotates its own refresh token in a loop.
//! 3. `api-key`: one API key is created, then `GET /api/v1/org` with `X-API-Key` in a loop.
//!
//! The server must run with rate limits off or high enough (`AIM_RATE_LIMIT_*_PER_MINUTE=0`),
//! or phases measure 429s (counted as errors). With `--pid`, the server's VmRSS is read before
//! the run (idle) and sampled every 100 ms (peak), and VmHWM is printed at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::stats::{Phase, rss_kib};

#[derive(Debug, clap::Args)]
pub struct AuthArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Concurrent workers.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Account to log in with (an admin or manager, to create the API key).
    #[arg(long, default_value = "admin@localhost")]
    pub email: String,
    /// Its password.
    #[arg(long, env = "AIM_BENCH_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// PID of the server process, to report its memory (Linux).
    #[arg(long)]
    pub pid: Option<u32>,
}

struct Shared {
    http: reqwest::Client,
    base: String,
    email: String,
    password: String,
}

impl Shared {
    async fn login(&self) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "email": self.email, "password": self.password }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("login: HTTP {}", r.status());
        }
        Ok(r.json().await?)
    }

    async fn refresh(&self, token: &str) -> anyhow::Result<String> {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/refresh", self.base))
            .json(&json!({ "refreshToken": token }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("refresh: HTTP {}", r.status());
        }
        let v: Value = r.json().await?;
        v["refreshToken"]
            .as_str()
            .map(str::to_string)
            .context("no refreshToken")
    }

    async fn with_key(&self, key: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .get(format!("{}/api/v1/org", self.base))
            .header("x-api-key", key)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("api key: HTTP {}", r.status());
        }
        let _ = r.bytes().await?;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Work {
    Login,
    Refresh,
    ApiKey,
}

async fn phase(
    name: &'static str,
    shared: &Arc<Shared>,
    work: Work,
    key: &Arc<String>,
    args: &AuthArgs,
    peak_kib: &Arc<AtomicU64>,
) -> anyhow::Result<Phase> {
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let start = Instant::now();
    let sampler = args.pid.map(|pid| {
        let peak = peak_kib.clone();
        tokio::spawn(async move {
            loop {
                if let Some((rss, _)) = rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let shared = shared.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut refresh = match work {
                Work::Refresh => match shared.login().await {
                    Ok(v) => v["refreshToken"].as_str().map(str::to_string),
                    Err(_) => None,
                },
                _ => None,
            };
            while Instant::now() < deadline {
                let t = Instant::now();
                let res = match work {
                    Work::Login => shared.login().await.map(|_| ()),
                    Work::ApiKey => shared.with_key(&key).await,
                    Work::Refresh => match &refresh {
                        Some(tok) => shared.refresh(tok).await.map(|n| refresh = Some(n)),
                        None => shared.login().await.map(|v| {
                            refresh = v["refreshToken"].as_str().map(str::to_string);
                        }),
                    },
                };
                match res {
                    Ok(()) => lat.push(t.elapsed().as_micros() as u64),
                    Err(_) => {
                        errors += 1;
                        if matches!(work, Work::Refresh) {
                            refresh = None;
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut p = Phase {
        name,
        ..Default::default()
    };
    for t in tasks {
        let (lat, errors) = t.await?;
        p.ok += lat.len() as u64;
        p.errors += errors;
        p.latencies_us.extend(lat);
    }
    p.elapsed = start.elapsed();
    if let Some(s) = sampler {
        s.abort();
    }
    Ok(p)
}

pub async fn run(args: AuthArgs) -> anyhow::Result<()> {
    let base = args.server.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1))
        .build()?;
    let shared = Arc::new(Shared {
        http,
        base,
        email: args.email.clone(),
        password: args.password.clone(),
    });
    let idle = args.pid.and_then(rss_kib);
    let session = shared.login().await.context("initial login")?;
    let access = session["accessToken"].as_str().context("no accessToken")?;
    let r = shared
        .http
        .post(format!("{}/api/v1/api-keys", shared.base))
        .bearer_auth(access)
        .json(&json!({ "name": "aim-bench" }))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("creating the API key: HTTP {}", r.status());
    }
    let created: Value = r.json().await?;
    let key = Arc::new(created["key"].as_str().context("no key")?.to_string());
    let peak = Arc::new(AtomicU64::new(0));
    let mut phases = Vec::new();
    for (name, work) in [
        ("login", Work::Login),
        ("refresh", Work::Refresh),
        ("api-key auth", Work::ApiKey),
    ] {
        let p = phase(name, &shared, work, &key, &args, &peak).await?;
        let rss = args.pid.and_then(rss_kib).map(|(rss, _)| rss);
        phases.push((p, rss));
    }
    println!(
        "aim-bench auth: server {}, concurrency {}, {} s per phase",
        args.server, args.concurrency, args.duration
    );
    println!("| workload | ok | errors | req/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (p, _) in &mut phases {
        println!("{}", p.row());
    }
    for (p, rss) in &phases {
        if let Some(kib) = rss {
            println!(
                "server RSS after the {} phase: {:.1} MiB",
                p.name,
                *kib as f64 / 1024.0
            );
        }
    }
    if let Some(pid) = args.pid {
        let end = rss_kib(pid);
        if let Some((rss, _)) = idle {
            println!(
                "server RSS idle (before load): {:.1} MiB",
                rss as f64 / 1024.0
            );
        }
        println!(
            "server RSS peak sampled under load: {:.1} MiB",
            peak.load(Ordering::Relaxed) as f64 / 1024.0
        );
        if let Some((rss, hwm)) = end {
            println!(
                "server RSS after load: {:.1} MiB, VmHWM (lifetime peak): {:.1} MiB",
                rss as f64 / 1024.0,
                hwm as f64 / 1024.0
            );
        }
    }
    Ok(())
}
