//! One connection to one broker, owned by one task.
//!
//! Callers encode their request (with a correlation id from the shared
//! handle), hand the frame to the task through a bounded channel and await a
//! oneshot for the response frame. The task writes frames in order, reads
//! responses and routes each by correlation id, so many requests can be in
//! flight at once (pipelining). When the socket fails, or the handle is
//! dropped, or a request times out, the task ends and every pending request
//! fails with a network error: a response stream that may be out of step is
//! never reused, as in the Java client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{
    FrameDecoder, decode_response_as, encode_request, encode_request_vectored,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::vectored::{ChunkBuf, EncodeVectored, VectoredBuf};
use kafka_protocol::{ApiKey, EncodeError, ErrorCode, Request, VersionRange};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::security::{Connector, host_of, refuses_certificate, tls_failure};
use crate::{Error, Result};

/// Requests queued for the writer beyond those in flight.
const QUEUE: usize = 64;
/// The largest response frame accepted.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

struct Outgoing {
    correlation_id: i32,
    frame: ChunkBuf,
    /// `None` for requests that get no response (produce with acks=0).
    reply: Option<oneshot::Sender<Result<Bytes>>>,
}

/// A live connection to a broker. Cloning shares the connection.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    broker: String,
    client_id: Option<String>,
    outgoing: mpsc::Sender<Outgoing>,
    next_correlation_id: AtomicI32,
    versions: HashMap<i16, VersionRange>,
    closed: Arc<AtomicBool>,
    /// Why the connection task ended, once it has.
    ended: Arc<OnceLock<Error>>,
    /// When the connection stops being handed out, so that a new one
    /// authenticates before the broker ends this one's SASL session
    /// (KIP-368); the task ends once what was sent on it is answered.
    retire: Arc<OnceLock<tokio::time::Instant>>,
    request_timeout: Duration,
}

fn network(broker: &str, reason: impl std::fmt::Display) -> Error {
    Error::Network {
        broker: broker.to_owned(),
        reason: reason.to_string(),
    }
}

/// When to stop handing out a connection whose SASL session lasts
/// `lifetime`: at 85-95% of it, at random as the Java client does, so that
/// connections made together do not all reconnect at once.
fn retire_after(lifetime: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let spread = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte) {
        Ok(()) => f64::from(byte[0]) / 255.0,
        Err(_) => 0.5,
    };
    lifetime.mul_f64(0.85 + 0.10 * spread)
}

impl Connection {
    /// Connects to `broker` (`host:port`, resolved now) in plain text,
    /// within `setup_timeout`, and learns the broker's API versions.
    pub async fn connect(
        broker: &str,
        client_id: Option<&str>,
        setup_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self> {
        Self::open(
            broker,
            client_id,
            setup_timeout,
            request_timeout,
            &Connector::default(),
        )
        .await
    }

    /// [`connect`](Self::connect), then TLS and SASL as `connector` says.
    pub(crate) async fn open(
        broker: &str,
        client_id: Option<&str>,
        setup_timeout: Duration,
        request_timeout: Duration,
        connector: &Connector,
    ) -> Result<Self> {
        let started = tokio::time::Instant::now();
        let stream = tokio::time::timeout(setup_timeout, TcpStream::connect(broker))
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "connecting to {broker} took over {setup_timeout:?}"
                ))
            })?
            .map_err(|e| network(broker, e))?;
        let _ = stream.set_nodelay(true);
        let (outgoing, queue) = mpsc::channel(QUEUE);
        let closed = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(OnceLock::new());
        let retire = Arc::new(OnceLock::new());
        match &connector.tls {
            None => {
                let (reader, writer) = stream.into_split();
                spawn_task(broker, reader, writer, queue, &closed, &ended, &retire);
            }
            Some(tls) => {
                let name = ServerName::try_from(host_of(broker).to_owned())
                    .map_err(|e| Error::config("bootstrap.servers", format!("`{broker}`: {e}")))?;
                let left = setup_timeout.saturating_sub(started.elapsed());
                let handshake =
                    tokio_rustls::TlsConnector::from(tls.0.clone()).connect(name, stream);
                let stream = tokio::time::timeout(left, handshake)
                    .await
                    .map_err(|_| {
                        Error::Timeout(format!(
                            "the TLS handshake with {broker} took over {setup_timeout:?}"
                        ))
                    })?
                    .map_err(|e| tls_failure(broker, e))?;
                let (reader, writer) = tokio::io::split(stream);
                spawn_task(broker, reader, writer, queue, &closed, &ended, &retire);
            }
        }
        let mut connection = Self {
            inner: Arc::new(Inner {
                broker: broker.to_owned(),
                client_id: client_id.map(str::to_owned),
                outgoing,
                next_correlation_id: AtomicI32::new(0),
                versions: HashMap::new(),
                closed,
                ended,
                retire,
                request_timeout,
            }),
        };
        let left = setup_timeout.saturating_sub(started.elapsed());
        let versions = tokio::time::timeout(left, connection.negotiate())
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "ApiVersions with {broker} took over {setup_timeout:?}"
                ))
            })??;
        // Only this function holds the Arc so far.
        if let Some(inner) = Arc::get_mut(&mut connection.inner) {
            inner.versions = versions;
        }
        if let Some(credentials) = &connector.sasl {
            let left = setup_timeout.saturating_sub(started.elapsed());
            let authenticated =
                tokio::time::timeout(left, super::sasl::authenticate(&connection, credentials))
                    .await
                    .map_err(|_| {
                        Error::Timeout(format!(
                            "SASL authentication with {broker} took over {setup_timeout:?}"
                        ))
                    })
                    .and_then(|result| result);
            match authenticated {
                Err(e) => {
                    connection.close();
                    return Err(e);
                }
                Ok(Some(lifetime)) => {
                    let _ = connection
                        .inner
                        .retire
                        .set(tokio::time::Instant::now() + retire_after(lifetime));
                }
                Ok(None) => {}
            }
        }
        tracing::debug!(broker, "connected");
        Ok(connection)
    }

    /// ApiVersions at the newest version we know, falling back to v0 when
    /// the broker answers UNSUPPORTED_VERSION (KIP-511).
    async fn negotiate(&self) -> Result<HashMap<i16, VersionRange>> {
        let request = ApiVersionsRequest {
            client_software_name: "kafka-sdk-rust".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let mut response: ApiVersionsResponse = self.call(&request, 3).await?;
        if response.error_code == ErrorCode::UnsupportedVersion.code() {
            response = self.call(&ApiVersionsRequest::default(), 0).await?;
        }
        if response.error_code != 0 {
            let code =
                ErrorCode::from_code(response.error_code).unwrap_or(ErrorCode::UnknownServerError);
            return Err(Error::kafka(
                code,
                format!("ApiVersions from {}", self.inner.broker),
            ));
        }
        Ok(response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect())
    }

    /// The broker's address.
    pub fn broker(&self) -> &str {
        &self.inner.broker
    }

    /// Whether the connection has failed or been closed.
    /// Also true once a SASL session nears its end (KIP-368): callers then
    /// connect again, while requests already sent on this one complete.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
            || self
                .inner
                .retire
                .get()
                .is_some_and(|at| tokio::time::Instant::now() >= *at)
    }

    /// The newest version of `R` both sides support, capped at the newest
    /// the client implements ([`super::versions`]).
    pub fn version_for<R: Request>(&self) -> Result<i16> {
        let api = R::API_KEY;
        if super::versions::client_max(api).is_none() {
            return Err(Error::Protocol(format!(
                "{api:?} is not a request this client implements"
            )));
        }
        if !self.supports(api) {
            return Err(Error::kafka(
                ErrorCode::UnsupportedVersion,
                format!("{api:?} is not offered by {}", self.inner.broker),
            ));
        }
        self.negotiated(api).ok_or_else(|| {
            Error::kafka(
                ErrorCode::UnsupportedVersion,
                format!("no common version of {api:?} with {}", self.inner.broker),
            )
        })
    }

    /// The version of `api` requests go out at on this connection: the
    /// newest both sides offer, capped at what the client implements;
    /// `None` when there is no common version.
    pub fn negotiated(&self, api: ApiKey) -> Option<i16> {
        let codec = api.valid_versions();
        let ours = codec.max.min(super::versions::client_max(api)?);
        let theirs = self.inner.versions.get(&(api as i16))?;
        let max = ours.min(theirs.max);
        (max >= codec.min.max(theirs.min)).then_some(max)
    }

    /// Whether the broker offers `api` at all.
    pub fn supports(&self, api: ApiKey) -> bool {
        self.inner.versions.contains_key(&(api as i16))
    }

    /// Sends `request` at the newest common version and awaits its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        let version = self.version_for::<R>()?;
        self.call(request, version).await
    }

    /// Sends `request` at `version` and awaits its response, failing after
    /// `request.timeout.ms` (which also closes the connection).
    pub async fn call<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        self.submit(request, version).await?.response().await
    }

    /// Queues `request` on the connection now and returns its pending
    /// response. Requests are written in the order they are submitted, which
    /// is what keeps an idempotent producer's batches in sequence.
    pub async fn submit<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse<R>> {
        let (reply, receiver) = oneshot::channel();
        self.enqueue(request, version, Some(reply), plain_frame)
            .await?;
        Ok(self.pending(receiver, version))
    }

    /// [`submit`](Self::submit) for a request whose record batches are
    /// written to the socket as they are, without copying them into the
    /// frame (produce).
    pub async fn submit_vectored<R: Request + EncodeVectored>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse<R>> {
        let (reply, receiver) = oneshot::channel();
        self.enqueue(request, version, Some(reply), vectored_frame)
            .await?;
        Ok(self.pending(receiver, version))
    }

    fn pending<R: Request>(
        &self,
        receiver: oneshot::Receiver<Result<Bytes>>,
        version: i16,
    ) -> PendingResponse<R> {
        PendingResponse {
            receiver,
            version,
            connection: self.clone(),
            _request: std::marker::PhantomData,
        }
    }

    /// Sends a request that gets no response (produce with acks=0), its
    /// record batches uncopied as in [`submit_vectored`](Self::submit_vectored).
    pub async fn send_without_response<R: Request + EncodeVectored>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<()> {
        self.enqueue(request, version, None, vectored_frame).await
    }

    async fn enqueue<R: Request>(
        &self,
        request: &R,
        version: i16,
        reply: Option<oneshot::Sender<Result<Bytes>>>,
        encode: fn(&R, i32, Option<&str>, i16) -> std::result::Result<ChunkBuf, EncodeError>,
    ) -> Result<()> {
        // Not `is_closed`: a retiring connection still takes what a caller
        // holding it sends, well before its session ends.
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(self.ended());
        }
        let correlation_id = self
            .inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed);
        tracing::trace!(broker = %self.inner.broker, api = ?R::API_KEY, version, correlation_id, "request");
        let frame = encode(
            request,
            correlation_id,
            self.inner.client_id.as_deref(),
            version,
        )
        .map_err(|e| Error::Protocol(format!("{:?} v{version}: {e}", R::API_KEY)))?;
        self.inner
            .outgoing
            .send(Outgoing {
                correlation_id,
                frame,
                reply,
            })
            .await
            .map_err(|_| self.ended())
    }

    /// The error of a request that found the connection closed: why the
    /// connection task ended, if it has (a refused TLS certificate, say),
    /// else just that it is closed.
    fn ended(&self) -> Error {
        self.inner
            .ended
            .get()
            .cloned()
            .unwrap_or_else(|| network(&self.inner.broker, "connection closed"))
    }

    /// Closes the connection; pending requests fail.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }
}

fn plain_frame<R: Request>(
    request: &R,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
) -> std::result::Result<ChunkBuf, EncodeError> {
    let mut frame = BytesMut::new();
    encode_request(&mut frame, correlation_id, client_id, version, request)?;
    Ok(ChunkBuf::from(frame.freeze()))
}

fn vectored_frame<R: Request + EncodeVectored>(
    request: &R,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
) -> std::result::Result<ChunkBuf, EncodeError> {
    let mut frame = VectoredBuf::new();
    encode_request_vectored(&mut frame, correlation_id, client_id, version, request)?;
    Ok(ChunkBuf::new(frame.into_chunks()?))
}

/// A request written (or queued to be written) whose response is awaited.
#[derive(Debug)]
pub struct PendingResponse<R: Request> {
    receiver: oneshot::Receiver<Result<Bytes>>,
    version: i16,
    connection: Connection,
    _request: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingResponse<R> {
    /// Waits for the response, up to `request.timeout.ms` (after which the
    /// connection is closed).
    pub async fn response(self) -> Result<R::Response> {
        let inner = &self.connection.inner;
        let frame = match tokio::time::timeout(inner.request_timeout, self.receiver).await {
            Ok(Ok(result)) => result?,
            // Dropped unanswered: queued as the task ended.
            Ok(Err(_)) => return Err(self.connection.ended()),
            Err(_) => {
                self.connection.close();
                return Err(Error::Timeout(format!(
                    "{:?} to {} got no response within {:?}",
                    R::API_KEY,
                    inner.broker,
                    inner.request_timeout
                )));
            }
        };
        let version = self.version;
        decode_response_as::<R::Response>(frame, version)
            .map(|(_, body)| body)
            .map_err(|e| {
                Error::Protocol(format!(
                    "{:?} v{version} response from {}: {e}",
                    R::API_KEY,
                    inner.broker
                ))
            })
    }
}

/// Starts the connection task on the halves of its stream.
fn spawn_task<R, W>(
    broker: &str,
    reader: R,
    writer: W,
    queue: mpsc::Receiver<Outgoing>,
    closed: &Arc<AtomicBool>,
    ended: &Arc<OnceLock<Error>>,
    retire: &Arc<OnceLock<tokio::time::Instant>>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Everything the connection task logs carries the broker address.
    let span = tracing::debug_span!("connection", broker);
    let task = run(
        broker.to_owned(),
        reader,
        writer,
        queue,
        closed.clone(),
        ended.clone(),
        retire.clone(),
    );
    tokio::spawn(task.instrument(span));
}

/// The connection task: writes queued frames, reads responses, routes them.
async fn run(
    broker: String,
    mut reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
    mut queue: mpsc::Receiver<Outgoing>,
    closed: Arc<AtomicBool>,
    ended: Arc<OnceLock<Error>>,
    retire: Arc<OnceLock<tokio::time::Instant>>,
) {
    let decoder = FrameDecoder::new(MAX_RESPONSE);
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut pending: HashMap<i32, oneshot::Sender<Result<Bytes>>> = HashMap::new();
    let mut check_closed = tokio::time::interval(Duration::from_millis(50));
    // Set when the broker ended the TLS session over our certificate.
    let mut refused = false;
    let reason = loop {
        tokio::select! {
            outgoing = queue.recv() => {
                let Some(outgoing) = outgoing else { break "client dropped the connection".to_owned() };
                if let Some(reply) = outgoing.reply {
                    pending.insert(outgoing.correlation_id, reply);
                }
                let mut frame = outgoing.frame;
                if let Err(e) = writer.write_all_buf(&mut frame).await {
                    break format!("write failed: {e}");
                }
                // TLS may hold the last records of a frame until flushed
                // (a no-op on plain TCP).
                if let Err(e) = writer.flush().await {
                    break format!("write failed: {e}");
                }
            }
            read = reader.read_buf(&mut input) => {
                match read {
                    Ok(0) => break "the broker closed the connection".to_owned(),
                    Err(e) => {
                        refused = refuses_certificate(&e);
                        break format!("read failed: {e}");
                    }
                    Ok(_) => {}
                }
                let mut failure = None;
                loop {
                    match decoder.decode(&mut input) {
                        Ok(Some(frame)) => {
                            let mut peek = frame.clone();
                            let Ok(correlation_id) = kafka_protocol::primitives::read_i32(&mut peek) else {
                                failure = Some("response without a correlation id".to_owned());
                                break;
                            };
                            tracing::trace!(broker, correlation_id, bytes = frame.len(), "response");
                            match pending.remove(&correlation_id) {
                                Some(reply) => { let _ = reply.send(Ok(frame)); }
                                None => {
                                    failure = Some(format!("response to unknown correlation id {correlation_id}"));
                                    break;
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(e) => { failure = Some(format!("bad response frame: {e}")); break; }
                    }
                }
                if let Some(reason) = failure { break reason; }
            }
            _ = check_closed.tick() => {
                if closed.load(Ordering::Acquire) { break "closed".to_owned(); }
                let retired = retire.get().is_some_and(|at| tokio::time::Instant::now() >= *at);
                if retired && pending.is_empty() && queue.is_empty() {
                    break "replaced before its SASL session expires".to_owned();
                }
            }
        }
    };
    let error = if refused {
        Error::Authentication {
            broker: broker.clone(),
            code: None,
            reason: format!("the broker refused the TLS client certificate: {reason}"),
        }
    } else {
        network(&broker, &reason)
    };
    // Before `closed`: a request that sees it closed reports this.
    let _ = ended.set(error.clone());
    closed.store(true, Ordering::Release);
    tracing::debug!(broker, reason, pending = pending.len(), "connection ended");
    for (_, reply) in pending {
        let _ = reply.send(Err(error.clone()));
    }
}
