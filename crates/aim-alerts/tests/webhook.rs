//! Webhook delivery against a real HTTP receiver on loopback: the receiver verifies every
//! signature the way docs/ALERTS.md tells integrators to.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aim_alerts::retry::RetryPolicy;
use aim_alerts::signature;
use aim_alerts::webhook::{Attempt, DeliveryLog, DeliveryState, WebhookTarget, deliver};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

const SECRET: &[u8] = b"whsec-test-0123456789";

#[derive(Default)]
struct Receiver {
    /// Fail this many requests with 503 before accepting.
    fail_first: u32,
    seen: AtomicU32,
    /// (delivery id, signature verified) per request.
    log: Mutex<Vec<(String, bool)>>,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = r.seen.fetch_add(1, Ordering::SeqCst);
    let sig = headers
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = chrono_now();
    let ok = signature::verify(SECRET, sig, &body, now, 300).is_ok();
    let id = headers
        .get("x-aim-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    r.log.lock().unwrap().push((id, ok));
    if !ok {
        return StatusCode::UNAUTHORIZED;
    }
    if n < r.fail_first {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn receiver(fail_first: u32) -> (String, Arc<Receiver>) {
    let r = Arc::new(Receiver {
        fail_first,
        ..Receiver::default()
    });
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), r)
}

#[derive(Default)]
struct MemLog(Mutex<Vec<Attempt>>);

#[async_trait::async_trait]
impl DeliveryLog for MemLog {
    async fn record(&self, _id: &str, a: &Attempt) {
        self.0.lock().unwrap().push(a.clone());
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn clock() -> Box<aim_alerts::webhook::Clock> {
    Box::new(chrono_now)
}

#[tokio::test]
async fn retries_until_delivered_and_every_attempt_is_signed_and_logged() {
    let (url, r) = receiver(2).await;
    let target = WebhookTarget {
        url,
        secret: SECRET.to_vec(),
    };
    let log = MemLog::default();
    let body = br#"{"id":"al_1","severity":"high","title":"denial burst"}"#;
    let state = deliver(
        &reqwest::Client::new(),
        &target,
        "dl_1",
        "anomaly.denial_burst",
        body,
        fast(),
        Duration::from_secs(5),
        &*clock(),
        &log,
    )
    .await;
    assert_eq!(state, DeliveryState::Delivered);
    let attempts = log.0.lock().unwrap().clone();
    let states: Vec<_> = attempts.iter().map(|a| a.state).collect();
    assert_eq!(
        states,
        [
            DeliveryState::Retrying,
            DeliveryState::Retrying,
            DeliveryState::Delivered
        ]
    );
    assert_eq!(attempts[0].status, Some(503));
    assert_eq!(attempts[2].status, Some(204));
    assert!(attempts[..2].iter().all(|a| a.next_delay_ms.unwrap() <= 20));
    let seen = r.log.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(id, ok)| id == "dl_1" && *ok), "{seen:?}");
}

#[tokio::test]
async fn wrong_secret_is_refused_by_the_receiver_and_dead_lettered() {
    let (url, r) = receiver(0).await;
    let target = WebhookTarget {
        url,
        secret: b"not-the-secret".to_vec(),
    };
    let log = MemLog::default();
    let state = deliver(
        &reqwest::Client::new(),
        &target,
        "dl_2",
        "x",
        b"{}",
        fast(),
        Duration::from_secs(5),
        &*clock(),
        &log,
    )
    .await;
    assert_eq!(state, DeliveryState::DeadLettered);
    let attempts = log.0.lock().unwrap().clone();
    assert_eq!(attempts.len(), 4);
    assert!(attempts.iter().all(|a| a.status == Some(401)));
    assert_eq!(attempts[3].state, DeliveryState::DeadLettered);
    assert_eq!(attempts[3].next_delay_ms, None);
    assert!(r.log.lock().unwrap().iter().all(|(_, ok)| !ok));
}

#[tokio::test]
async fn unreachable_receiver_is_dead_lettered_with_the_reason() {
    // Bind then drop: nothing listens on the port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = WebhookTarget {
        url: format!("http://127.0.0.1:{port}/hook"),
        secret: SECRET.to_vec(),
    };
    let log = MemLog::default();
    let state = deliver(
        &reqwest::Client::new(),
        &target,
        "dl_3",
        "x",
        b"{}",
        RetryPolicy {
            max_attempts: 2,
            ..fast()
        },
        Duration::from_secs(2),
        &*clock(),
        &log,
    )
    .await;
    assert_eq!(state, DeliveryState::DeadLettered);
    let attempts = log.0.lock().unwrap().clone();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a.status.is_none()));
    assert!(
        attempts[0].error.as_deref().unwrap().contains("connection"),
        "{attempts:?}"
    );
    // the secret never appears in what is logged
    let dump = format!("{attempts:?}{target:?}");
    assert!(!dump.contains("whsec-test"));
}
