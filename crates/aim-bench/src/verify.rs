//! `aim-bench verify`: signed action verification (`POST /api/v1/agents/{id}/actions/verify`)
//! throughput, measured against the raw single-core Ed25519 verification rate of the same machine.
//!
//! Steps:
//! 1. Raw baseline: `verify_strict` of one ed25519-dalek signature over a canonical-request-sized
//!    message in a loop on one thread for `--raw-secs` seconds, before the load.
//! 2. Setup: log in as the given admin, register `--agents` agents with keys generated here,
//!    each declaring `--capability` (declared by an admin = granted), and activate each one with
//!    the AIP challenge (`/challenge`, `aim_core::aip::respond`, `/verify`).
//! 3. Load: `--concurrency` workers, each on its own keep-alive HTTP/1.1 connection (hyper's
//!    connection-level client, all on one single-threaded runtime), send signed verify requests
//!    for `--duration` seconds. Request `i` (a counter shared by all workers) comes from agent
//!    `i mod agents`; a `--deny-ratio` share of the requests, spread evenly, asks for
//!    `--denied-capability` (never declared) so denials are exercised.
//! 4. Raw baseline again, after the load, on an idle server.
//!
//! A decision is any 200 answer (approved, denied and pending are all decisions); everything else
//! is an error, counted by HTTP status. The headline ratio is decisions/s ÷ the average raw
//! verifications/s. The server must run with its rate limits off
//! (`AIM_RATE_LIMIT_*_PER_MINUTE=0`, including `AIM_RATE_LIMIT_AGENT_ACTION_PER_MINUTE`), or the
//! run measures 429s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aim_core::aip;
use aim_core::keys::{KeyPair, encode_base64};
use aim_core::request_signing::{canonical_request, sign_request};
use anyhow::{Context, bail};
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::stats::{Phase, cpu_secs, rss_kib};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Admin account that registers and activates the agents.
    #[arg(long, default_value = "admin@localhost")]
    pub email: String,
    /// Its password.
    #[arg(long, env = "AIM_BENCH_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Agents to register and activate (requests go to them round-robin).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub agents: u32,
    /// Concurrent workers.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Seconds of load.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    /// Share (0 to 1) of requests asking for a capability the agents were not granted.
    #[arg(long, default_value_t = 0.0, value_parser = parse_ratio)]
    pub deny_ratio: f64,
    /// Capability declared at registration (granted) and asked for by most requests.
    #[arg(long, default_value = "files:read")]
    pub capability: String,
    /// Capability never declared, asked for by the `--deny-ratio` share.
    #[arg(long, default_value = "files:write")]
    pub denied_capability: String,
    /// Seconds of each raw single-core Ed25519 verification measurement (before and after).
    #[arg(long, default_value_t = 2.0, value_parser = parse_raw_secs)]
    pub raw_secs: f64,
    /// PID of the server process, to report its memory and CPU time (Linux).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Route to load: `verify` (the action decision), `heartbeat` (the signed-request pipeline
    /// alone — signature, nonce claim, audit record — as a comparison floor) or `health` (an
    /// unsigned `GET /health` through the same middleware stack and HTTP client: the ceiling any
    /// request can reach on this machine with this client).
    #[arg(long, value_enum, default_value_t = Endpoint::Verify)]
    pub endpoint: Endpoint,
    /// Sign this many requests before the timed phase (each with its own nonce and the time it
    /// was signed), so that the load measures the server without the client's Ed25519 signing
    /// on the same cores — agents sign on their own machines. When they run out, workers sign
    /// inline (reported). The whole run must fit in the server's timestamp window (default
    /// ±300 s) after the signing. 0: every request is signed when it is sent.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=5_000_000))]
    pub presign: u64,
}

/// A request signed before the timed phase: its headers, for request number `i` of the run.
type Presigned = [(&'static str, String); 4];

/// The signed route under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Endpoint {
    /// `POST /api/v1/agents/{id}/actions/verify`
    Verify,
    /// `POST /api/v1/agents/{id}/heartbeat`
    Heartbeat,
    /// `GET /health` (unsigned, no store access)
    Health,
}

impl Endpoint {
    fn suffix(self) -> &'static str {
        match self {
            Endpoint::Verify => "actions/verify",
            Endpoint::Heartbeat => "heartbeat",
            Endpoint::Health => "health",
        }
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

fn parse_raw_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.1..=600.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0.1 and 600"))
    }
}

/// Whether request number `i` asks for the ungranted capability. Over any `k` consecutive
/// requests starting at 0, exactly `floor(k × ratio)` do, spread evenly (no bursts).
pub fn asks_ungranted(i: u64, ratio: f64) -> bool {
    ((i + 1) as f64 * ratio).floor() > (i as f64 * ratio).floor()
}

/// Raw single-core Ed25519 verification rate (verifications/s): `verify_strict` — what the server
/// runs per signed request — over a 200-byte canonical request, on the calling thread, for `secs`.
pub fn raw_verify_rate(secs: f64) -> f64 {
    use std::hint::black_box;
    let key = KeyPair::from_seed(&[7; 32]);
    let msg = canonical_request(
        "aim_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "POST",
        "/api/v1/agents/aim_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/actions/verify",
        1_767_225_600,
        "AAAAAAAAAAAAAAAAAAAAAA==",
        br#"{"capability":"files:read","resource":"file:///tmp/x","context":{"riskLevel":"low"}}"#,
    )
    .expect("a valid canonical request");
    let sig = ed25519_dalek::Signature::from_bytes(&key.sign(msg.as_bytes()));
    let vk = *key.public().as_dalek();
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        for _ in 0..64 {
            let ok = black_box(&vk)
                .verify_strict(black_box(msg.as_bytes()), black_box(&sig))
                .is_ok();
            assert!(ok, "the baseline signature must verify");
        }
        n += 64;
        if start.elapsed() >= limit {
            break;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Agent {
    id: String,
    key: KeyPair,
    /// `/api/v1/agents/{id}/actions/verify` (or `/heartbeat`)
    path: String,
    /// `path` as the request target, parsed once.
    uri: http::Uri,
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    /// Latency of each 200 answer, microseconds (signing excluded).
    latencies_us: Vec<u64>,
    /// 200 answers by their `status` member.
    decisions: BTreeMap<String, u64>,
    /// Non-200 answers by HTTP status; 0 = no HTTP answer (connection or body error).
    errors: BTreeMap<u16, u64>,
    /// First error body seen per HTTP status (diagnosis).
    samples: BTreeMap<u16, String>,
    /// Granted capability asked, answer other than approved; ungranted asked, answer approved.
    unexpected_granted: u64,
    unexpected_ungranted: u64,
    /// Time spent building and signing requests (body hash + Ed25519 signature + headers).
    sign: Duration,
    signed: u64,
    /// Requests sent with headers signed before the timed phase.
    presigned_used: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.latencies_us.extend(o.latencies_us);
        for (k, v) in o.decisions {
            *self.decisions.entry(k).or_default() += v;
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in o.samples {
            self.samples.entry(k).or_insert(v);
        }
        self.unexpected_granted += o.unexpected_granted;
        self.unexpected_ungranted += o.unexpected_ungranted;
        self.sign += o.sign;
        self.signed += o.signed;
        self.presigned_used += o.presigned_used;
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn fresh_nonce() -> String {
    use rand::Rng as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    encode_base64(&bytes)
}

async fn expect_json(r: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

/// Logs in; refuses an account that must change its password first (it could not register).
async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    pw: &str,
) -> anyhow::Result<String> {
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": pw }))
        .send()
        .await?;
    let v = expect_json(r, "login").await?;
    if v["passwordChangeRequired"] == Value::Bool(true) {
        bail!(
            "{email} must change its one-time password first (POST /api/v1/auth/change-password)"
        );
    }
    v["accessToken"]
        .as_str()
        .map(str::to_string)
        .context("login: no accessToken (is TOTP required for this account?)")
}

/// Registers and activates one agent through the AIP challenge.
async fn activate_agent(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    capability: &str,
    endpoint: Endpoint,
) -> anyhow::Result<Agent> {
    let key = {
        use rand::Rng as _;
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        KeyPair::from_seed(&seed)
    };
    let r = http
        .post(format!("{base}/api/v1/agents"))
        .bearer_auth(token)
        .json(&json!({
            "name": name,
            "publicKey": encode_base64(&key.public().to_bytes()),
            "capabilities": [capability],
        }))
        .send()
        .await?;
    let v = expect_json(r, "registering an agent").await?;
    let id = v["id"].as_str().context("no agent id")?.to_string();
    let r = http
        .post(format!("{base}/api/v1/agents/{id}/challenge"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await?;
    let c: aip::Challenge = serde_json::from_value(expect_json(r, "challenge").await?)?;
    let resp = aip::respond(&c, &key, "key-1", chrono::Utc::now());
    let r = http
        .post(format!("{base}/api/v1/agents/{id}/verify"))
        .bearer_auth(token)
        .json(&resp)
        .send()
        .await?;
    let v = expect_json(r, "AIP verify").await?;
    if v["agent"]["status"] != "active" {
        bail!("agent {id} not active after the challenge: {v}");
    }
    let path = format!("/api/v1/agents/{id}/{}", endpoint.suffix());
    Ok(Agent {
        uri: http::Uri::try_from(path.as_str()).context("agent path")?,
        path,
        id,
        key,
    })
}

/// What every worker of the timed phase shares.
struct Load {
    /// `host:port` of the server (the load speaks plain HTTP/1.1).
    authority: String,
    agents: Vec<Agent>,
    bodies: [Vec<Bytes>; 2],
    counter: AtomicU64,
    deny_ratio: f64,
    endpoint: Endpoint,
    deadline: Instant,
    presigned: Vec<Presigned>,
}

/// One keep-alive HTTP/1.1 connection (hyper's connection-level client: no pool, no URL parsing
/// per request, so the client takes as little of the shared cores as possible).
async fn connect(authority: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends `req` on `conn` (reconnecting first when the server closed it) and reads the answer.
async fn exchange(
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    authority: &str,
    req: http::Request<Full<Bytes>>,
) -> anyhow::Result<(u16, Bytes)> {
    let sender = match conn {
        Some(s) if !s.is_closed() => s,
        _ => conn.insert(connect(authority).await?),
    };
    let res = async {
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok((code, body))
    }
    .await;
    if res.is_err() {
        *conn = None;
    }
    res
}

/// One worker: signed requests on its own connection until the deadline.
async fn worker(load: Arc<Load>) -> Tally {
    let mut t = Tally::default();
    let mut conn = None;
    let host = HeaderValue::from_str(&load.authority).ok();
    let json = HeaderValue::from_static("application/json");
    while Instant::now() < load.deadline {
        let i = load.counter.fetch_add(1, Ordering::Relaxed);
        let (agent, ungranted, body) =
            request_number(i, &load.agents, &load.bodies, load.deny_ratio);
        let mut req = http::Request::new(Full::new(Bytes::new()));
        if let Some(h) = &host {
            req.headers_mut().insert(http::header::HOST, h.clone());
        }
        if load.endpoint == Endpoint::Health {
            *req.uri_mut() = http::Uri::from_static("/health");
            let start = Instant::now();
            let res = exchange(&mut conn, &load.authority, req).await;
            t.record(res, start.elapsed(), load.endpoint, ungranted);
            continue;
        }
        let s = Instant::now();
        let headers = if let Some(h) = load.presigned.get(i as usize) {
            t.presigned_used += 1;
            h.clone()
        } else {
            match sign_fresh(agent, body) {
                Ok(h) => {
                    t.sign += s.elapsed();
                    t.signed += 1;
                    h
                }
                Err(e) => {
                    // Cannot happen with the ids and nonces made here; count it rather than panic.
                    t.no_answer(e.to_string());
                    continue;
                }
            }
        };
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = agent.uri.clone();
        *req.body_mut() = Full::new(body.clone());
        let h = req.headers_mut();
        h.insert(http::header::CONTENT_TYPE, json.clone());
        for (n, v) in headers {
            if let Ok(v) = HeaderValue::try_from(v) {
                h.insert(n, v);
            }
        }
        let start = Instant::now();
        let res = exchange(&mut conn, &load.authority, req).await;
        t.record(res, start.elapsed(), load.endpoint, ungranted);
    }
    t
}

impl Tally {
    /// Counts one answer: a 200 is a decision (by its `status` member), anything else an error.
    fn record<B: AsRef<[u8]>>(
        &mut self,
        res: anyhow::Result<(u16, B)>,
        elapsed: Duration,
        endpoint: Endpoint,
        ungranted: bool,
    ) {
        let t = self;
        match res {
            Ok((200, bytes)) => {
                let status = serde_json::from_slice::<Value>(bytes.as_ref())
                    .ok()
                    .and_then(|v| v["status"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "(no status)".into());
                if endpoint == Endpoint::Verify {
                    if ungranted && status == "approved" {
                        t.unexpected_ungranted += 1;
                    } else if !ungranted && status != "approved" {
                        t.unexpected_granted += 1;
                    }
                }
                *t.decisions.entry(status).or_default() += 1;
                t.latencies_us.push(elapsed.as_micros() as u64);
            }
            Ok((code, bytes)) => {
                let bytes = bytes.as_ref();
                *t.errors.entry(code).or_default() += 1;
                t.samples.entry(code).or_insert_with(|| {
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into()
                });
            }
            Err(e) => t.no_answer(e.to_string()),
        }
    }

    /// Counts a request that got no HTTP answer (status 0), keeping the first reason.
    fn no_answer(&mut self, reason: String) {
        *self.errors.entry(0).or_default() += 1;
        self.samples.entry(0).or_insert(reason);
    }
}

/// Request number `i` of a run: its agent (round-robin), whether it asks for the ungranted
/// capability, and its body.
fn request_number<'a>(
    i: u64,
    agents: &'a [Agent],
    bodies: &'a [Vec<Bytes>; 2],
    deny_ratio: f64,
) -> (&'a Agent, bool, &'a Bytes) {
    let agent = &agents[(i % agents.len() as u64) as usize];
    let ungranted = asks_ungranted(i, deny_ratio);
    let variants = &bodies[usize::from(ungranted)];
    (
        agent,
        ungranted,
        &variants[(i % variants.len() as u64) as usize],
    )
}

/// The signature headers of `agent`'s POST of `body`, with a fresh nonce and the current time.
fn sign_fresh(agent: &Agent, body: &[u8]) -> aim_core::Result<Presigned> {
    sign_request(
        &agent.key,
        &agent.id,
        "POST",
        &agent.path,
        unix_now(),
        &fresh_nonce(),
        body,
    )
}

/// Signs requests `0..n` before the load, each as the worker that draws its number would
/// ([`request_number`], [`sign_fresh`]).
fn presign(
    agents: &[Agent],
    bodies: &[Vec<Bytes>; 2],
    deny_ratio: f64,
    n: u64,
) -> anyhow::Result<Vec<Presigned>> {
    (0..n)
        .map(|i| {
            let (agent, _, body) = request_number(i, agents, bodies, deny_ratio);
            Ok(sign_fresh(agent, body)?)
        })
        .collect()
}

/// Runs the raw baseline on a blocking thread (the runtime stays free).
async fn raw_rate(secs: f64) -> anyhow::Result<f64> {
    Ok(tokio::task::spawn_blocking(move || raw_verify_rate(secs)).await?)
}

/// `host:port` of an `http://` base URL (the timed phase speaks plain HTTP/1.1 only).
fn load_authority(base: &str) -> anyhow::Result<String> {
    let uri: http::Uri = base.parse().with_context(|| format!("server URL {base}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("the load speaks plain HTTP: --server must be an http:// URL, not {base}");
    }
    let host = uri.host().context("server URL without a host")?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(80)))
}

/// Runs `concurrency` workers to the deadline on a single-threaded runtime of their own thread:
/// the client then uses at most one core, with no wake-ups across threads.
async fn run_load(load: Arc<Load>, concurrency: u32) -> anyhow::Result<Tally> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("aim-bench-load".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(async {
                        let tasks: Vec<_> = (0..concurrency)
                            .map(|_| tokio::spawn(worker(load.clone())))
                            .collect();
                        let mut total = Tally::default();
                        for t in tasks {
                            total.merge(t.await?);
                        }
                        anyhow::Ok(total)
                    })
                });
            let _ = tx.send(result);
        })?;
    rx.await.context("the load thread ended without a result")?
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    if args.presign > 0 && args.duration > 240 {
        bail!(
            "--presign needs --duration of at most 240 s: presigned timestamps must stay inside the server's window (default ±300 s)"
        );
    }
    let base = args.server.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()?;
    let idle_rss = args.pid.and_then(rss_kib);

    let raw_before = raw_rate(args.raw_secs).await?;

    let setup = Instant::now();
    let token = login(&http, &base, &args.email, &args.password).await?;
    let run_tag = {
        use rand::Rng as _;
        format!("{:08x}", rand::rng().next_u32())
    };
    let mut agents = Vec::with_capacity(args.agents as usize);
    for n in 0..args.agents {
        let name = format!("bench-{run_tag}-{n}");
        agents.push(
            activate_agent(&http, &base, &token, &name, &args.capability, args.endpoint)
                .await
                .with_context(|| format!("setting up agent {name}"))?,
        );
    }
    let setup = setup.elapsed();

    // Request bodies: 64 resources per capability, so requests do not all carry the same bytes.
    let make = |cap: &str| -> Vec<Bytes> {
        if args.endpoint != Endpoint::Verify {
            return vec![Bytes::from_static(b"{}")];
        }
        (0..64)
            .map(|r| {
                Bytes::from(
                    serde_json::to_vec(&json!({
                        "capability": cap,
                        "resource": format!("file:///tmp/aim-bench/{r}"),
                        "context": { "riskLevel": "low" },
                    }))
                    .expect("JSON"),
                )
            })
            .collect()
    };
    let bodies = Arc::new([make(&args.capability), make(&args.denied_capability)]);
    let agents = Arc::new(agents);

    let (presigned, presign_secs) = if args.presign > 0 && args.endpoint != Endpoint::Health {
        let (agents, bodies, ratio, n) = (
            agents.clone(),
            bodies.clone(),
            args.deny_ratio,
            args.presign,
        );
        let t = Instant::now();
        let v = tokio::task::spawn_blocking(move || presign(&agents, &bodies, ratio, n)).await??;
        (v, t.elapsed().as_secs_f64())
    } else {
        (Vec::new(), 0.0)
    };
    let authority = load_authority(&base)?;
    let (Ok(agents), Ok(bodies)) = (Arc::try_unwrap(agents), Arc::try_unwrap(bodies)) else {
        bail!("the presigning task still holds the agents");
    };

    let peak = Arc::new(AtomicU64::new(0));
    let sampler = args.pid.map(|pid| {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Some((rss, _)) = rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let me = std::process::id();
    let (server_cpu0, client_cpu0) = (args.pid.and_then(cpu_secs), cpu_secs(me));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);
    let load = Arc::new(Load {
        authority,
        agents,
        bodies,
        counter: AtomicU64::new(0),
        deny_ratio: args.deny_ratio,
        endpoint: args.endpoint,
        deadline,
        presigned,
    });
    let mut total = run_load(load.clone(), args.concurrency).await?;
    let presigned = &load.presigned;
    let elapsed = start.elapsed();
    let (server_cpu1, client_cpu1) = (args.pid.and_then(cpu_secs), cpu_secs(me));
    if let Some(s) = sampler {
        s.abort();
    }
    let after_rss = args.pid.and_then(rss_kib);

    let raw_after = raw_rate(args.raw_secs).await?;

    // Report.
    let ok: u64 = total.decisions.values().sum();
    let errors: u64 = total.errors.values().sum();
    let mut phase = Phase {
        name: "verify",
        ok,
        errors,
        elapsed,
        latencies_us: std::mem::take(&mut total.latencies_us),
    };
    let secs = elapsed.as_secs_f64();
    let rate = phase.per_sec();
    println!(
        "aim-bench verify: endpoint {:?}, server {}, {} agents, concurrency {}, {} s, deny ratio {}",
        args.endpoint, args.server, args.agents, args.concurrency, args.duration, args.deny_ratio
    );
    println!(
        "setup: {} agents registered and activated in {:.1} s",
        args.agents,
        setup.as_secs_f64()
    );
    println!("| decisions | errors | decisions/s | p50 ms | p90 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {ok} | {errors} | {rate:.1} | {:.2} | {:.2} | {:.2} |",
        phase.quantile_ms(0.50),
        phase.quantile_ms(0.90),
        phase.quantile_ms(0.99)
    );
    for (status, n) in &total.decisions {
        println!("  {status}: {n} ({:.1}/s)", *n as f64 / secs);
    }
    for (code, n) in &total.errors {
        let sample = total.samples.get(code).map(String::as_str).unwrap_or("");
        let label = if *code == 0 {
            "no HTTP answer".to_string()
        } else {
            format!("HTTP {code}")
        };
        println!("  error {label}: {n}  e.g. {sample}");
    }
    if total.unexpected_granted + total.unexpected_ungranted > 0 {
        println!(
            "  UNEXPECTED: {} granted asks not approved, {} ungranted asks approved",
            total.unexpected_granted, total.unexpected_ungranted
        );
    }
    let raw_min = raw_before.min(raw_after);
    let raw_avg = (raw_before + raw_after) / 2.0;
    println!(
        "raw ed25519-dalek verify_strict, 1 thread: before {raw_before:.0}/s, after {raw_after:.0}/s, min {raw_min:.0}/s, avg {raw_avg:.0}/s"
    );
    println!(
        "ratio decisions/s ÷ raw verifies/s: {:.3} (avg), {:.3} (min)   [target ≥ 0.5]",
        rate / raw_avg,
        rate / raw_min
    );
    if !presigned.is_empty() {
        println!(
            "presigned before the load: {} requests in {presign_secs:.1} s; sent {} of them, {} more signed inline",
            presigned.len(),
            total.presigned_used,
            total.signed
        );
    }
    if let (Some(c0), Some(c1)) = (client_cpu0, client_cpu1) {
        let cpu = c1 - c0;
        print!(
            "client CPU: {cpu:.2} CPU-s ({:.2} cores), {:.1} µs per answer",
            cpu / secs,
            cpu * 1e6 / (ok + errors).max(1) as f64
        );
        if total.signed > 0 {
            print!(
                "; signing inline {:.1} µs per request, {:.1} % of it",
                total.sign.as_secs_f64() * 1e6 / total.signed as f64,
                100.0 * total.sign.as_secs_f64() / cpu.max(1e-9)
            );
        }
        println!();
    }
    if let (Some(c0), Some(c1)) = (server_cpu0, server_cpu1) {
        let cpu = c1 - c0;
        println!(
            "server CPU: {:.2} CPU-s ({:.2} cores), {:.1} µs per decision",
            cpu,
            cpu / secs,
            cpu * 1e6 / ok.max(1) as f64
        );
    }
    if let Some(pid) = args.pid {
        if let Some((rss, _)) = idle_rss {
            println!("server RSS before setup: {:.1} MiB", rss as f64 / 1024.0);
        }
        println!(
            "server RSS peak sampled under load: {:.1} MiB",
            peak.load(Ordering::Relaxed) as f64 / 1024.0
        );
        if let Some((rss, _)) = after_rss {
            println!(
                "server RSS right after load: {:.1} MiB",
                rss as f64 / 1024.0
            );
        }
        if let Some((_, hwm)) = rss_kib(pid) {
            println!(
                "server VmHWM (lifetime peak): {:.1} MiB",
                hwm as f64 / 1024.0
            );
        }
    }
    if ok == 0 {
        bail!("no decisions: every request failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A presigned request carries a valid signature over exactly the body the worker sends for
    /// its number, and no nonce repeats.
    #[test]
    fn presigned_requests_match_what_the_workers_send() {
        use aim_core::request_signing::{HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
        let agents: Vec<Agent> = (0..3u8)
            .map(|k| {
                let key = KeyPair::from_seed(&[k + 1; 32]);
                let id = format!("aim_bench{k}");
                let path = format!("/api/v1/agents/{id}/actions/verify");
                Agent {
                    uri: http::Uri::try_from(path.as_str()).unwrap(),
                    path,
                    id,
                    key,
                }
            })
            .collect();
        let bodies = [
            vec![
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\"a\":2}"),
            ],
            vec![Bytes::from_static(b"{\"d\":1}")],
        ];
        let signed = presign(&agents, &bodies, 0.25, 40).unwrap();
        assert_eq!(signed.len(), 40);
        let mut nonces = std::collections::HashSet::new();
        for (i, h) in signed.iter().enumerate() {
            let i = i as u64;
            let agent = &agents[(i % 3) as usize];
            let variants = &bodies[usize::from(asks_ungranted(i, 0.25))];
            let body = &variants[(i % variants.len() as u64) as usize];
            let get = |name: &str| h.iter().find(|(n, _)| *n == name).unwrap().1.clone();
            let ts: i64 = get(HEADER_TIMESTAMP).parse().unwrap();
            let nonce = get(HEADER_NONCE);
            assert!(nonces.insert(nonce.clone()), "nonce reused at {i}");
            let msg = canonical_request(&agent.id, "POST", &agent.path, ts, &nonce, body).unwrap();
            let sig = aim_core::keys::decode_base64("signature", &get(HEADER_SIGNATURE)).unwrap();
            assert!(
                agent.key.public().verify(msg.as_bytes(), &sig),
                "request {i}"
            );
            // Another agent's key or another body does not verify.
            let other = &agents[((i + 1) % 3) as usize];
            assert!(!other.key.public().verify(msg.as_bytes(), &sig));
            let wrong =
                canonical_request(&agent.id, "POST", &agent.path, ts, &nonce, b"{}").unwrap();
            assert!(!agent.key.public().verify(wrong.as_bytes(), &sig));
        }
    }

    #[test]
    fn ungranted_share_is_exact_and_spread() {
        let count = |r: f64, n: u64| (0..n).filter(|&i| asks_ungranted(i, r)).count() as u64;
        assert_eq!(count(0.0, 1000), 0);
        assert_eq!(count(1.0, 1000), 1000);
        assert_eq!(count(0.25, 1000), 250);
        assert_eq!(count(0.1, 1000), 100);
        // Evenly spread: with 0.25, exactly every fourth request.
        let picks: Vec<u64> = (0..12).filter(|&i| asks_ungranted(i, 0.25)).collect();
        assert_eq!(picks, vec![3, 7, 11]);
    }

    #[test]
    fn ratio_and_raw_secs_are_validated() {
        assert_eq!(parse_ratio("0.2"), Ok(0.2));
        assert_eq!(parse_ratio("0"), Ok(0.0));
        assert_eq!(parse_ratio("1"), Ok(1.0));
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("NaN").is_err());
        assert!(parse_ratio("x").is_err());
        assert!(parse_raw_secs("0").is_err());
        assert_eq!(parse_raw_secs("2"), Ok(2.0));
    }

    #[test]
    fn raw_baseline_measures_something() {
        let r = raw_verify_rate(0.1);
        assert!(r > 100.0, "{r}");
    }
}
