//! A man in the middle between a client and a sled's API, for the tests:
//! a relay on loopback that ends the client's TLS as the sled (with the
//! sled's own certificate and key, standing where the plaintext is, as
//! the host stands in front of a node on its service processor, or as
//! whatever holds the sled's key), opens its own TLS to the sled, and
//! passes each request and each answer on whole, after letting a
//! [`Tamper`] change bytes of its body (the head is left alone, so a
//! same-length change keeps the message well-formed HTTP). One request
//! per connection, as the sled's front door serves them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The relay's two TLS ends: as the sled to its client, as a client to
/// the sled.
#[derive(Clone)]
pub struct TlsEnds {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

/// Changes a message body in place; whether it changed anything.
pub type Tamper = Arc<dyn Fn(&mut [u8]) -> bool + Send + Sync>;

/// A running relay. Stops when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    /// Bodies changed so far (requests and answers).
    pub tampered: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// A relay to `upstream` that changes requests with `on_request` and
    /// answers with `on_answer`.
    pub async fn start(
        upstream: SocketAddr,
        tls: TlsEnds,
        on_request: Option<Tamper>,
        on_answer: Option<Tamper>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tampered = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&tampered);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (on_request, on_answer) = (on_request.clone(), on_answer.clone());
                let count = Arc::clone(&count);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let Ok(client) = tls.acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    // The sled's certificate is checked for its platform
                    // id, not a host name.
                    let name = ServerName::try_from("sled").unwrap();
                    let Ok(server) = tls.connector.connect(name, server).await else {
                        return;
                    };
                    let _ = relay_one(client, server, on_request, on_answer, &count).await;
                });
            }
        });
        Self {
            addr,
            tampered,
            task,
        }
    }

    pub fn tampered(&self) -> usize {
        self.tampered.load(Ordering::SeqCst)
    }
}

async fn relay_one(
    mut client: impl AsyncRead + AsyncWrite + Unpin,
    mut server: impl AsyncRead + AsyncWrite + Unpin,
    on_request: Option<Tamper>,
    on_answer: Option<Tamper>,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let mut request = read_message(&mut client).await?;
    apply(&on_request, &mut request, count);
    server.write_all(&request.bytes).await?;
    let mut answer = read_message(&mut server).await?;
    apply(&on_answer, &mut answer, count);
    client.write_all(&answer.bytes).await?;
    client.shutdown().await
}

fn apply(tamper: &Option<Tamper>, message: &mut Message, count: &AtomicUsize) {
    if let Some(tamper) = tamper
        && tamper(&mut message.bytes[message.body_at..])
    {
        count.fetch_add(1, Ordering::SeqCst);
    }
}

/// One HTTP/1.1 message: its bytes, and where its body starts.
struct Message {
    bytes: Vec<u8>,
    body_at: usize,
}

/// Reads a head and as many body bytes as it declares (to the end of the
/// stream when it declares none: the server closes after its answer).
async fn read_message(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Message> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let body_at = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes.extend_from_slice(&buf[..n]);
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..body_at]).to_lowercase();
    let declared: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap());
    loop {
        if declared.is_some_and(|len| bytes.len() >= body_at + len) {
            break;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    Ok(Message { bytes, body_at })
}

/// A tamper that changes one character of the value after the first
/// `"key":` in a JSON body: a digit or a lower-case hex letter becomes
/// another of its kind, so the JSON stays valid and the same length.
pub fn flip_value_of(key: &'static str) -> Tamper {
    Arc::new(move |body: &mut [u8]| {
        let needle = format!("\"{key}\":");
        let Some(at) = body
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
        else {
            return false;
        };
        let value = at + needle.len();
        let Some(offset) = body[value..]
            .iter()
            .position(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        else {
            return false;
        };
        let byte = &mut body[value + offset];
        *byte = match *byte {
            b'9' => b'8',
            b'f' => b'e',
            other => other + 1,
        };
        true
    })
}
