//! Real receivers for the messages the product sends: an HTTP endpoint for the webhook and a
//! small SMTP server, both on 127.0.0.1 port 0, each recording every delivery it accepted and
//! able to refuse the first few.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What a receiver accepted: the delivery id it carried and the message.
#[derive(Clone, Debug)]
pub struct Received {
    pub delivery_id: String,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Requests to refuse before accepting any.
    refuse: AtomicUsize,
    /// Requests seen, refused or not.
    seen: AtomicUsize,
}

/// A webhook endpoint: `POST /hook` answers 200, or 500 while refusing; optionally slow.
pub struct WebhookReceiver {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start(refuse_first: usize, delay: Duration) -> WebhookReceiver {
        use axum::http::{HeaderMap, StatusCode};
        let shared = Arc::new(Shared { refuse: AtomicUsize::new(refuse_first), ..Default::default() });
        let state = shared.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state.seen.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    if state
                        .refuse
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let delivery_id = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    state.received.lock().unwrap().push(Received { delivery_id, body });
                    StatusCode::OK
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        WebhookReceiver { url, shared, task }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn seen(&self) -> usize {
        self.shared.seen.load(Ordering::SeqCst)
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An SMTP server that speaks enough of RFC 5321 for a client without TLS or authentication:
/// it accepts every message (its delivery id is the `Message-ID`), or answers 451 to the end of
/// the data while refusing.
pub struct SmtpReceiver {
    /// `smtp://127.0.0.1:PORT`
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpReceiver {
    pub async fn start(refuse_first: usize) -> SmtpReceiver {
        let shared = Arc::new(Shared { refuse: AtomicUsize::new(refuse_first), ..Default::default() });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = session(socket, state).await;
                });
            }
        });
        SmtpReceiver { url, shared, task }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(socket: tokio::net::TcpStream, state: Arc<Shared>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 test-smtp ready\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-test-smtp\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut body = String::new();
                loop {
                    // A connection that ends before the lone dot (a sender killed mid-message)
                    // delivered nothing: the message is neither seen nor received.
                    let Some(data) = lines.next_line().await? else { return Ok(()) };
                    if data == "." {
                        break;
                    }
                    body.push_str(data.strip_prefix('.').unwrap_or(&data));
                    body.push('\n');
                }
                state.seen.fetch_add(1, Ordering::SeqCst);
                if state.refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
                {
                    b"451 try again later\r\n"
                } else {
                    let delivery_id = header(&body, "Message-ID")
                        .map(|id| {
                            id.trim_matches(['<', '>']).split('@').next().unwrap_or_default().to_owned()
                        })
                        .unwrap_or_default();
                    state.received.lock().unwrap().push(Received { delivery_id, body });
                    b"250 queued\r\n"
                }
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// The value of header `name` in a message (unfolded, first occurrence).
pub fn header(message: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut lines = message.lines().take_while(|l| !l.is_empty()).peekable();
    while let Some(line) = lines.next() {
        if line.to_ascii_lowercase().starts_with(&prefix) {
            let mut value = line[prefix.len()..].trim().to_owned();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}
